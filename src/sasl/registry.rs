//! Mechanism factories by name, for either role: the
//! [`ClientMechanisms`](crate::client::ClientMechanisms) of a
//! [`ClientConfig`](crate::client::ClientConfig) and the
//! [`ServerMechanisms`](crate::server::ServerMechanisms) of a
//! [`ServerConfig`](crate::server::ServerConfig).

use std::fmt;
use std::sync::Arc;

/// A factory for the mechanism it names: what the role's policy needs to
/// know about it (`P`: the client's
/// [`MechanismProfile`](crate::sasl::policy::MechanismProfile), the
/// server's [`OfferRule`](crate::server::OfferRule)), and the function
/// that builds it (`B`). Made by
/// [`ClientMechanismFactory::new`](crate::client::ClientMechanismFactory::new)
/// and
/// [`ServerMechanismFactory::new`](crate::server::ServerMechanismFactory::new).
pub struct Factory<P, B: ?Sized> {
    name: String,
    traits: P,
    pub(crate) build: Arc<B>,
}

impl<P, B: ?Sized> Factory<P, B> {
    pub(crate) fn from_parts(name: String, traits: P, build: Arc<B>) -> Self {
        Self {
            name,
            traits,
            build,
        }
    }

    /// The mechanism name (`SCRAM-SHA-256`, `GSSAPI`...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the policy knows about it.
    pub fn traits(&self) -> &P {
        &self.traits
    }
}

impl<P: Clone, B: ?Sized> Clone for Factory<P, B> {
    fn clone(&self) -> Self {
        Self::from_parts(self.name.clone(), self.traits.clone(), self.build.clone())
    }
}

impl<P: fmt::Debug, B: ?Sized> fmt::Debug for Factory<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory")
            .field("name", &self.name)
            .field("traits", &self.traits)
            .finish_non_exhaustive()
    }
}

/// Mechanism factories by name, in registration order.
pub struct MechanismRegistry<P, B: ?Sized> {
    entries: Vec<Factory<P, B>>,
}

impl<P: Clone, B: ?Sized> Clone for MechanismRegistry<P, B> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
        }
    }
}

impl<P: fmt::Debug, B: ?Sized> fmt::Debug for MechanismRegistry<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.entries).finish()
    }
}

impl<P, B: ?Sized> FromIterator<Factory<P, B>> for MechanismRegistry<P, B> {
    fn from_iter<I: IntoIterator<Item = Factory<P, B>>>(iter: I) -> Self {
        let mut r = Self::empty();
        for f in iter {
            r.register(f);
        }
        r
    }
}

impl<P, B: ?Sized> MechanismRegistry<P, B> {
    /// No mechanism at all.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds `factory`, replacing a mechanism of the same name (in its
    /// place).
    pub fn register(&mut self, factory: Factory<P, B>) -> &mut Self {
        match self.entries.iter_mut().find(|e| e.name == factory.name) {
            Some(e) => *e = factory,
            None => self.entries.push(factory),
        }
        self
    }

    /// Removes the mechanism `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.name != name);
        self.entries.len() != before
    }

    /// The mechanism `name`.
    pub fn get(&self, name: &str) -> Option<&Factory<P, B>> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every mechanism, in registration order.
    pub fn iter(&self) -> std::slice::Iter<'_, Factory<P, B>> {
        self.entries.iter()
    }
}
