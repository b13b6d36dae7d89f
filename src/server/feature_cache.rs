//! The `<stream:features/>` a configuration's servers have written,
//! serialised: every connection of a host offers the same few feature
//! sets, and building and writing the element was a twentieth of a
//! negotiation's work and allocations.

use std::sync::{Arc, RwLock};

use crate::features::StreamFeatures;
use crate::xml::StreamWriter;

/// Feature sets kept at most: a configuration offers a handful (before
/// and after TLS and authentication, per framing), so a full cache only
/// means an unusual configuration, which then writes without it.
const MAX_ENTRIES: usize = 16;

/// A feature set, the writer it was written for, and its bytes.
type Entry = (StreamWriter, StreamFeatures, Arc<[u8]>);

/// Serialised feature sets by writer (framing and content namespace).
/// Shared by the connections of one
/// [`ServerConfig`](super::ServerConfig) (a clone starts empty).
#[derive(Default)]
pub(crate) struct FeatureCache {
    entries: RwLock<Vec<Entry>>,
}

impl Clone for FeatureCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl FeatureCache {
    /// The bytes of `features` as `writer` writes them, serialised by
    /// `write` the first time (an error is handed back and nothing kept).
    pub(crate) fn get_or_write<E>(
        &self,
        writer: &StreamWriter,
        features: &StreamFeatures,
        write: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Arc<[u8]>, E> {
        if let Some(bytes) = self.find(writer, features) {
            return Ok(bytes);
        }
        let bytes: Arc<[u8]> = write()?.into();
        // A poisoned lock only means another connection panicked while
        // holding it: the cache is then skipped, never trusted half-made.
        if let Ok(mut entries) = self.entries.write() {
            let known = entries.iter().any(|(w, f, _)| w == writer && f == features);
            if entries.len() < MAX_ENTRIES && !known {
                entries.push((writer.clone(), features.clone(), bytes.clone()));
            }
        }
        Ok(bytes)
    }

    fn find(&self, writer: &StreamWriter, features: &StreamFeatures) -> Option<Arc<[u8]>> {
        let entries = self.entries.read().ok()?;
        entries
            .iter()
            .find(|(w, f, _)| w == writer && f == features)
            .map(|(_, _, b)| b.clone())
    }

    /// How many feature sets are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Framing;

    fn tcp() -> StreamWriter {
        StreamWriter::new("jabber:client")
    }

    fn features(mechanism: &str) -> StreamFeatures {
        StreamFeatures {
            mechanisms: Some(vec![mechanism.to_owned()]),
            ..StreamFeatures::default()
        }
    }

    #[test]
    fn each_feature_set_is_written_once_per_framing() {
        let cache = FeatureCache::default();
        let mut writes = 0;
        let mut write = |text: &str| {
            writes += 1;
            Ok::<_, ()>(text.as_bytes().to_vec())
        };
        let a = cache
            .get_or_write(&tcp(), &features("PLAIN"), || write("tcp plain"))
            .unwrap();
        let b = cache
            .get_or_write(&tcp(), &features("PLAIN"), || write("again"))
            .unwrap();
        assert_eq!((&*a, &*b), (&b"tcp plain"[..], &b"tcp plain"[..]));
        let c = cache
            .get_or_write(
                &StreamWriter::with_framing("jabber:client", Framing::WebSocket),
                &features("PLAIN"),
                || write("ws plain"),
            )
            .unwrap();
        let d = cache
            .get_or_write(&tcp(), &features("SCRAM-SHA-1"), || write("tcp scram"))
            .unwrap();
        assert_eq!((&*c, &*d), (&b"ws plain"[..], &b"tcp scram"[..]));
        assert_eq!(writes, 3);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn it_stays_bounded_and_keeps_nothing_that_failed() {
        let cache = FeatureCache::default();
        assert_eq!(
            cache.get_or_write(&tcp(), &features("X"), || Err::<Vec<u8>, _>("no")),
            Err("no")
        );
        assert_eq!(cache.len(), 0);
        for i in 0..MAX_ENTRIES + 5 {
            let f = features(&format!("M{i}"));
            let bytes = cache
                .get_or_write(&tcp(), &f, || Ok::<_, ()>(vec![i as u8]))
                .unwrap();
            assert_eq!(&*bytes, &[i as u8]);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}
