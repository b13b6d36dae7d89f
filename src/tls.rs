//! What the host tells a state machine about its TLS session. The
//! machines never compute TLS values: the host supplies them.

use crate::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};

/// What the host knows about the TLS session, handed over once TLS is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The negotiated protocol version.
    pub version: TlsVersion,
    /// The channel-binding data the host can supply for this connection,
    /// one entry per type (see `sasl::channel_binding`). Empty when the
    /// host cannot export any.
    pub channel_bindings: Vec<ChannelBinding>,
}

impl TlsInfo {
    /// TLS without channel-binding data.
    pub fn without_binding(version: TlsVersion) -> Self {
        Self {
            version,
            channel_bindings: Vec::new(),
        }
    }

    /// The types the host can supply.
    pub fn binding_types(&self) -> Vec<ChannelBindingType> {
        self.channel_bindings.iter().map(|b| b.kind).collect()
    }
}
