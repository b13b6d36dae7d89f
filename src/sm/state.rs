//! [`SmState`]: a stream management session as a value, and its byte
//! encoding.
//!
//! Its byte encoding is documented on [`SmState`].

use std::fmt;

use jid::FullJid;

use super::SentStanza;

const MAGIC: &[u8; 6] = b"XMPPSM";
const VERSION: u8 = 1;

/// Everything needed to resume a stream management session: its id, the
/// bound JID, both counters and the stanzas the peer has not
/// acknowledged. The client takes it from
/// [`Client::sm_state`](crate::client::Client::sm_state) and gives it to
/// a new client ([`Client::resume_session`](crate::client::Client::resume_session));
/// the server hands it to its host in
/// [`ServerEvent::Detached`](crate::server::ServerEvent::Detached). It
/// saves to bytes and back ([`to_bytes`](Self::to_bytes),
/// [`from_bytes`](Self::from_bytes)). `Debug` shows the counters, not the
/// stanzas.
///
/// # Encoding, version 1
///
/// All integers big-endian; strings UTF-8.
///
/// | Bytes | Field |
/// |---|---|
/// | 6 | magic `XMPPSM` |
/// | 1 | version: `1` |
/// | 2 + n | the resumption id: length, bytes |
/// | 2 + n | the bound full JID: length, bytes |
/// | 4 | `handled`: stanzas handled from the peer, modulo 2^32 |
/// | 4 | `acked`: our stanzas the peer acknowledged, modulo 2^32 |
/// | 1 | flags: bit 0, a location follows; bit 1, a max follows; others 0 |
/// | 2 + n | the location (when flagged): length, bytes |
/// | 4 | `max`, in seconds (when flagged) |
/// | 4 | the number of unacknowledged stanzas |
/// | 4 + n each | each stanza, oldest first: length, then the element as XML with its namespace declared on it (`<message xmlns='jabber:client' ...>`) |
///
/// Nothing may follow. [`SmState::from_bytes`] refuses anything else
/// with an [`SmStateError`], and reads each stanza with the crate's
/// stream reader under the default [`Limits`](crate::xml::Limits): bytes
/// from a file cannot make it panic or allocate beyond what they hold.
/// A later version changes the version byte; this one stays readable.
#[derive(Clone, PartialEq)]
pub struct SmState {
    parts: SmParts,
}

/// The fields of an [`SmState`], for a host that keeps sessions its own
/// way ([`SmState::from_parts`], [`SmState::into_parts`]).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct SmParts {
    /// The resumption id (`previd` when resuming).
    pub id: String,
    /// The JID the session is bound to.
    pub jid: FullJid,
    /// Stanzas handled from the peer, modulo 2^32 (`h` when resuming).
    pub handled: u32,
    /// Our stanzas the peer acknowledged, modulo 2^32.
    pub acked: u32,
    /// Our stanzas the peer has not acknowledged, oldest first: the
    /// `acked + 1`th first.
    pub unacked: Vec<SentStanza>,
    /// Where the server prefers the client to reconnect (client side;
    /// only kept from a TLS-protected stream, see
    /// [`ClientEvent::StreamManagementEnabled`](crate::client::ClientEvent::StreamManagementEnabled)).
    pub location: Option<String>,
    /// The resumption timeout the server advertised, in seconds.
    pub max: Option<u32>,
}

impl SmParts {
    /// The parts of a session `id` bound to `jid`, with both counters at
    /// `handled` and `acked` and nothing unacknowledged.
    pub fn new(id: impl Into<String>, jid: FullJid, handled: u32, acked: u32) -> Self {
        Self {
            id: id.into(),
            jid,
            handled,
            acked,
            unacked: Vec::new(),
            location: None,
            max: None,
        }
    }
}

pub(crate) use SmParts as Parts;

impl fmt::Debug for SmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        f.debug_struct("SmState")
            .field("id", &p.id)
            .field("jid", &p.jid)
            .field("handled", &p.handled)
            .field("acked", &p.acked)
            .field("unacked", &p.unacked.len())
            .field("location", &p.location)
            .field("max", &p.max)
            .finish()
    }
}

impl fmt::Debug for SmParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmParts")
            .field("id", &self.id)
            .field("jid", &self.jid)
            .field("handled", &self.handled)
            .field("acked", &self.acked)
            .field("unacked", &self.unacked.len())
            .finish_non_exhaustive()
    }
}

/// Why bytes are not an [`SmState`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmStateError {
    /// Not an encoded state (the magic is missing).
    NotAState,
    /// An encoding version this crate does not know.
    Version(u8),
    /// The bytes end early, or something follows the last field.
    Length,
    /// A string that is not UTF-8, or a field with reserved bits set.
    Malformed(&'static str),
    /// The JID is not a full JID.
    Jid(String),
    /// A stanza that is not exactly one well-formed element within the
    /// reader's limits.
    Stanza(String),
    /// A value that cannot be encoded (a string longer than 65535 bytes).
    TooLong(&'static str),
}

impl fmt::Display for SmStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAState => f.write_str("not a stream management state"),
            Self::Version(v) => write!(f, "stream management state version {v} is not known"),
            Self::Length => f.write_str("the stream management state has a wrong length"),
            Self::Malformed(what) => write!(f, "the stream management state is malformed: {what}"),
            Self::Jid(e) => write!(f, "the stream management state's JID: {e}"),
            Self::Stanza(e) => write!(f, "a stanza of the stream management state: {e}"),
            Self::TooLong(what) => write!(f, "{what} is too long to encode"),
        }
    }
}

impl std::error::Error for SmStateError {}

impl SmState {
    /// A state from its parts.
    pub fn from_parts(parts: SmParts) -> Self {
        Self { parts }
    }

    /// Its parts.
    pub fn into_parts(self) -> SmParts {
        self.parts
    }

    /// The resumption id.
    pub fn id(&self) -> &str {
        &self.parts.id
    }

    /// The bound JID.
    pub fn jid(&self) -> &FullJid {
        &self.parts.jid
    }

    /// Stanzas handled from the peer, modulo 2^32.
    pub fn handled(&self) -> u32 {
        self.parts.handled
    }

    /// Our stanzas the peer acknowledged, modulo 2^32.
    pub fn acked(&self) -> u32 {
        self.parts.acked
    }

    /// Our stanzas sent, modulo 2^32: `acked` plus the unacknowledged.
    pub fn sent(&self) -> u32 {
        self.parts
            .acked
            .wrapping_add(self.parts.unacked.len() as u32)
    }

    /// Our stanzas the peer has not acknowledged, oldest first.
    pub fn unacked(&self) -> &[SentStanza] {
        &self.parts.unacked
    }

    /// The server's preferred reconnection address, if it gave one over
    /// a protected stream.
    pub fn location(&self) -> Option<&str> {
        self.parts.location.as_deref()
    }

    /// The resumption timeout the server advertised, in seconds.
    pub fn max(&self) -> Option<u32> {
        self.parts.max
    }

    /// Gives up the session: its unacknowledged stanzas, for the host to
    /// send again or report (a host that does not resume calls this, so
    /// that nothing is lost).
    pub fn into_unacked(self) -> Vec<SentStanza> {
        self.parts.unacked
    }

    /// The state as bytes (the encoding above, version 1).
    /// Fails only for a string over 65535 bytes (or a stanza over
    /// 4 GiB).
    pub fn to_bytes(&self) -> Result<Vec<u8>, SmStateError> {
        let p = &self.parts;
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_str(&mut out, &p.id, "the id")?;
        put_str(&mut out, p.jid.as_str(), "the JID")?;
        out.extend_from_slice(&p.handled.to_be_bytes());
        out.extend_from_slice(&p.acked.to_be_bytes());
        let flags = u8::from(p.location.is_some()) | (u8::from(p.max.is_some()) << 1);
        out.push(flags);
        if let Some(l) = &p.location {
            put_str(&mut out, l, "the location")?;
        }
        if let Some(m) = p.max {
            out.extend_from_slice(&m.to_be_bytes());
        }
        let n = u32::try_from(p.unacked.len()).map_err(|_| SmStateError::TooLong("the queue"))?;
        out.extend_from_slice(&n.to_be_bytes());
        for stanza in &p.unacked {
            let bytes = stanza.as_bytes();
            let len = u32::try_from(bytes.len()).map_err(|_| SmStateError::TooLong("a stanza"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// A state from [`to_bytes`](Self::to_bytes)'s bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SmStateError> {
        let mut r = Bytes(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(SmStateError::NotAState);
        }
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(SmStateError::Version(version));
        }
        let id = r.string()?;
        let jid = FullJid::new(&r.string()?).map_err(|e| SmStateError::Jid(e.to_string()))?;
        let handled = r.u32()?;
        let acked = r.u32()?;
        let flags = r.take(1)?[0];
        if flags & !0b11 != 0 {
            return Err(SmStateError::Malformed("reserved flags"));
        }
        let location = (flags & 1 != 0).then(|| r.string()).transpose()?;
        let max = (flags & 2 != 0).then(|| r.u32()).transpose()?;
        let n = r.u32()? as usize;
        // Each stanza takes 4 bytes at least: a count beyond what is left
        // is a lie, and reserves nothing.
        if n > r.0.len() / 4 {
            return Err(SmStateError::Length);
        }
        let mut unacked = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            unacked.push(SentStanza::read(r.take(len)?).map_err(SmStateError::Stanza)?);
        }
        if !r.0.is_empty() {
            return Err(SmStateError::Length);
        }
        Ok(Self::from_parts(SmParts {
            id,
            jid,
            handled,
            acked,
            unacked,
            location,
            max,
        }))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), SmStateError> {
    let len = u16::try_from(s.len()).map_err(|_| SmStateError::TooLong(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SmStateError> {
        if n > self.0.len() {
            return Err(SmStateError::Length);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SmStateError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, SmStateError> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let s = self.take(len)?;
        String::from_utf8(s.to_vec()).map_err(|_| SmStateError::Malformed("a string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SmState {
        let mut p = SmParts::new(
            "id-1",
            FullJid::new("alice@example.com/phone").unwrap(),
            u32::MAX,
            7,
        );
        p.unacked = [
            "<message xmlns='jabber:client' to='bob@example.com'><body>a &amp; b</body></message>",
            "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
        ]
        .map(|x| SentStanza::from_element(&x.parse().unwrap()).unwrap())
        .into();
        p.location = Some("[::1]:5222".into());
        p.max = Some(300);
        SmState::from_parts(p)
    }

    #[test]
    fn round_trip() {
        let s = state();
        let b = s.to_bytes().unwrap();
        assert_eq!(&b[..7], b"XMPPSM\x01");
        assert_eq!(SmState::from_bytes(&b).unwrap(), s);
        assert_eq!(s.sent(), 9);
    }

    #[test]
    fn stanzas_are_kept_standalone_whatever_form_they_came_in() {
        // A stanza saved with a prefix, or with its namespace in another
        // form, comes back in the one form the machines write.
        let mut p = state().into_parts();
        p.unacked.clear();
        let mut b = SmState::from_parts(p).to_bytes().unwrap();
        let n = b.len() - 4;
        b[n..].copy_from_slice(&1u32.to_be_bytes());
        let odd = b"<c:message xmlns:c='jabber:client' id='x'/>";
        b.extend_from_slice(&(odd.len() as u32).to_be_bytes());
        b.extend_from_slice(odd);
        let s = SmState::from_bytes(&b).unwrap();
        assert_eq!(
            s.unacked()[0].as_bytes(),
            b"<message xmlns='jabber:client' id='x'/>"
        );
        // Not one element: refused.
        let cut = &b[..b.len() - 1];
        let mut bad = cut[..n].to_vec();
        bad.extend_from_slice(&1u32.to_be_bytes());
        bad.extend_from_slice(&5u32.to_be_bytes());
        bad.extend_from_slice(b"<a/>x");
        assert!(matches!(
            SmState::from_bytes(&bad),
            Err(SmStateError::Stanza(_))
        ));
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let b = state().to_bytes().unwrap();
        for n in 0..b.len() {
            assert!(SmState::from_bytes(&b[..n]).is_err(), "{n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(SmState::from_bytes(&longer), Err(SmStateError::Length));
        let mut v2 = b.clone();
        v2[6] = 2;
        assert_eq!(SmState::from_bytes(&v2), Err(SmStateError::Version(2)));
    }

    #[test]
    fn a_lying_count_reserves_nothing() {
        let mut p = state().into_parts();
        p.unacked.clear();
        let mut b = SmState::from_parts(p).to_bytes().unwrap();
        let at = b.len() - 4;
        b[at..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(SmState::from_bytes(&b), Err(SmStateError::Length));
    }

    #[test]
    fn debug_shows_no_stanza() {
        let shown = format!("{:?}", state());
        assert!(
            !shown.contains("a & b") && !shown.contains("bob"),
            "{shown}"
        );
    }
}
