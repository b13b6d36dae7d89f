//! The async server's accounts in SQLite: per account and SCRAM hash, the
//! salt, the iteration count, StoredKey and ServerKey (RFC 5802), never
//! the password. PLAIN is checked by deriving the SCRAM-SHA-256 keys again
//! with the stored salt.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{ScramCredentials, ScramHash, SecretBytes};
use xmpp_sansio::steps::LegacyError;

use crate::tool::accounts::{password_matches, salt, valid_username};

/// The table: one row per account and hash family.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scram_credentials (
    username   TEXT    NOT NULL,
    mechanism  TEXT    NOT NULL CHECK (mechanism IN ('SCRAM-SHA-1', 'SCRAM-SHA-256')),
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    PRIMARY KEY (username, mechanism)
) WITHOUT ROWID;
";

/// A database failure, as a registration answer.
const INTERNAL: LegacyError = LegacyError { code: 500 };

/// The hash families kept for each account.
pub const HASHES: [ScramHash; 2] = [ScramHash::Sha1, ScramHash::Sha256];

fn mechanism(hash: ScramHash) -> Option<&'static str> {
    match hash {
        ScramHash::Sha1 => Some("SCRAM-SHA-1"),
        ScramHash::Sha256 => Some("SCRAM-SHA-256"),
        _ => None,
    }
}

/// How long a looked-up account's keys are served from memory.
pub const CACHE_LIFE: Duration = Duration::from_secs(300);
/// Most accounts' keys kept in memory (all dropped when full).
pub const CACHE_SIZE: usize = 4096;

/// The accounts: one SQLite connection behind a lock (lookups are one
/// indexed read; PBKDF2 is done before taking it), and the keys found
/// recently in memory (as ejabberd's authentication cache, on by default
/// there): a login of an account seen in the last [`CACHE_LIFE`] reads no
/// database. This server only ever creates accounts (registration,
/// `--user`; never changes or deletes one), and a creation drops what
/// was kept for that name; a change made to the file by another program
/// is seen within [`CACHE_LIFE`]. Unknown names are not kept.
pub struct Store {
    db: Mutex<Connection>,
    iterations: u32,
    /// PLAIN for an unknown user costs the same PBKDF2 as for a known one.
    dummy: ScramCredentials,
    cache: Mutex<Cache>,
    /// Lookups that read the database (tests).
    db_reads: AtomicU64,
}

/// The keys found recently, by name (and hash family), with when.
struct Cache {
    life: Duration,
    /// Most names kept.
    size: usize,
    entries: HashMap<String, Vec<(ScramHash, Instant, ScramCredentials)>>,
}

impl Cache {
    fn get(&self, username: &str, hash: ScramHash, now: Instant) -> Option<ScramCredentials> {
        let (_, at, creds) = self
            .entries
            .get(username)?
            .iter()
            .find(|(h, _, _)| *h == hash)?;
        (now.duration_since(*at) < self.life).then(|| creds.clone())
    }

    fn put(&mut self, username: &str, hash: ScramHash, creds: &ScramCredentials, now: Instant) {
        if self.life.is_zero() {
            return;
        }
        if self.entries.len() >= self.size && !self.entries.contains_key(username) {
            self.entries.clear();
        }
        let kept = self.entries.entry(username.to_owned()).or_default();
        kept.retain(|(h, _, _)| *h != hash);
        kept.push((hash, now, creds.clone()));
    }

    fn forget(&mut self, username: &str) {
        self.entries.remove(username);
    }
}

fn db_error(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

impl Store {
    /// Opens (creating it and its table when missing) the database at
    /// `path`; new credentials are derived with `iterations`.
    pub fn open(path: &Path, iterations: u32) -> Result<Self, String> {
        let db = Connection::open(path).map_err(|e| format!("--db {}: {e}", path.display()))?;
        Self::with(db, iterations)
    }

    /// A database in memory (tests).
    pub fn in_memory(iterations: u32) -> Result<Self, String> {
        Self::with(Connection::open_in_memory().map_err(db_error)?, iterations)
    }

    fn with(db: Connection, iterations: u32) -> Result<Self, String> {
        // WAL: a registration's write does not block the readers of logins.
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        // `--workers`: several processes share the file; a writer waits
        // for another's lock instead of failing at once.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_error)?;
        db.execute_batch(SCHEMA).map_err(db_error)?;
        let dummy =
            derive_server_credentials(ScramHash::Sha256, "no such user", &salt(), iterations)
                .map_err(|e| format!("deriving SCRAM credentials: {e}"))?;
        Ok(Self {
            db: Mutex::new(db),
            iterations,
            dummy,
            cache: Mutex::new(Cache {
                life: CACHE_LIFE,
                size: CACHE_SIZE,
                entries: HashMap::new(),
            }),
            db_reads: AtomicU64::new(0),
        })
    }

    /// The same store with accounts' keys kept `life` at most, `size`
    /// accounts at most (`Duration::ZERO`: none kept).
    pub fn with_cache(self, life: Duration, size: usize) -> Self {
        {
            let mut c = self.cache();
            c.life = life;
            c.size = size.max(1);
            c.entries.clear();
        }
        self
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many lookups read the database so far.
    pub fn db_reads(&self) -> u64 {
        self.db_reads.load(Ordering::Relaxed)
    }

    /// How many accounts' keys are kept in memory now.
    pub fn cached(&self) -> usize {
        self.cache().entries.len()
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored credentials of `username` for `hash` (`None`: no such
    /// account, or a hash family not kept).
    pub fn scram(
        &self,
        username: &str,
        hash: ScramHash,
    ) -> Result<Option<ScramCredentials>, String> {
        let Some(mech) = mechanism(hash) else {
            return Ok(None);
        };
        let now = Instant::now();
        if let Some(creds) = self.cache().get(username, hash, now) {
            return Ok(Some(creds));
        }
        self.db_reads.fetch_add(1, Ordering::Relaxed);
        let found = self.read(username, mech)?;
        if let Some(creds) = &found {
            self.cache().put(username, hash, creds, now);
        }
        Ok(found)
    }

    /// The row of `username` for `mech`.
    fn read(&self, username: &str, mech: &str) -> Result<Option<ScramCredentials>, String> {
        let db = self.db();
        let mut stmt = db
            .prepare_cached(
                "SELECT salt, iterations, stored_key, server_key FROM scram_credentials \
                 WHERE username = ?1 AND mechanism = ?2",
            )
            .map_err(db_error)?;
        stmt.query_row(params![username, mech], |row| {
            Ok(ScramCredentials {
                salt: row.get(0)?,
                iterations: row.get(1)?,
                stored_key: SecretBytes::new(row.get::<_, Vec<u8>>(2)?),
                server_key: SecretBytes::new(row.get::<_, Vec<u8>>(3)?),
            })
        })
        .optional()
        .map_err(db_error)
    }

    /// Whether `password` is `username`'s (PBKDF2: call it off the event
    /// loop). An unknown user costs the same and fails.
    pub fn check_password(&self, username: &str, password: &str) -> bool {
        let stored = self.scram(username, ScramHash::Sha256).ok().flatten();
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.clone());
        password_matches(ScramHash::Sha256, &stored, password, known)
    }

    /// Creates `username` with `password` (PBKDF2 for each hash family:
    /// call it off the event loop): `CONFLICT` when it exists,
    /// `NOT_ACCEPTABLE` for a bad name or password.
    pub fn create(&self, username: &str, password: &str) -> Result<(), LegacyError> {
        if !valid_username(username) || password.is_empty() {
            return Err(LegacyError::NOT_ACCEPTABLE);
        }
        let mut rows = Vec::new();
        for hash in HASHES {
            let c = derive_server_credentials(hash, password, &salt(), self.iterations)
                .map_err(|_| LegacyError::NOT_ACCEPTABLE)?;
            rows.push((mechanism(hash).unwrap_or_default(), c));
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(|_| INTERNAL)?;
        for (mech, c) in &rows {
            let inserted = tx.execute(
                "INSERT INTO scram_credentials \
                 (username, mechanism, salt, iterations, stored_key, server_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    username,
                    mech,
                    c.salt,
                    c.iterations,
                    c.stored_key.expose(),
                    c.server_key.expose()
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(LegacyError::CONFLICT);
                }
                Err(_) => return Err(INTERNAL),
            }
        }
        tx.commit().map_err(|_| INTERNAL)?;
        // Nothing kept for this name survives its creation (a row that
        // another program deleted and this one created anew).
        self.cache().forget(username);
        Ok(())
    }

    /// How many accounts there are.
    pub fn accounts(&self) -> Result<u64, String> {
        self.db()
            .query_row(
                "SELECT COUNT(DISTINCT username) FROM scram_credentials",
                [],
                |r| r.get(0),
            )
            .map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_keep_scram_keys_not_passwords() {
        let dir = std::env::temp_dir().join(format!("xmpp-store-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let store = Store::open(&dir, 4096).unwrap();
        assert_eq!(store.accounts().unwrap(), 0);
        store.create("alice", "pass-marker-7").unwrap();
        assert_eq!(store.create("alice", "other"), Err(LegacyError::CONFLICT));
        assert_eq!(store.create("a b", "x"), Err(LegacyError::NOT_ACCEPTABLE));
        assert_eq!(store.create("bob", ""), Err(LegacyError::NOT_ACCEPTABLE));
        assert_eq!(store.accounts().unwrap(), 1);
        for hash in HASHES {
            let c = store.scram("alice", hash).unwrap().unwrap();
            assert_eq!(c.iterations, 4096);
            assert_eq!(c.salt.len(), 16);
            let again = derive_server_credentials(hash, "pass-marker-7", &c.salt, 4096).unwrap();
            assert_eq!(again.stored_key.expose(), c.stored_key.expose());
            assert_eq!(again.server_key.expose(), c.server_key.expose());
        }
        assert!(store.scram("alice", ScramHash::Sha512).unwrap().is_none());
        assert!(store.scram("nobody", ScramHash::Sha256).unwrap().is_none());
        assert!(store.check_password("alice", "pass-marker-7"));
        assert!(!store.check_password("alice", "wrong"));
        assert!(!store.check_password("nobody", "pass-marker-7"));
        drop(store);
        // Reopened: the account is there, and the file holds no password.
        let store = Store::open(&dir, 4096).unwrap();
        assert!(store.check_password("alice", "pass-marker-7"));
        drop(store);
        let bytes = std::fs::read(&dir).unwrap_or_default();
        let wal = std::fs::read(format!("{}-wal", dir.display())).unwrap_or_default();
        for b in [bytes, wal] {
            assert!(!b.windows(13).any(|w| w == b"pass-marker-7"));
        }
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn keys_found_are_served_from_memory_for_a_while_and_dropped_on_creation() {
        let store = Store::in_memory(4096).unwrap();
        store.create("alice", "first-pw").unwrap();
        // An unknown name reads the database each time (not kept).
        for _ in 0..2 {
            assert!(store.scram("nobody", ScramHash::Sha256).unwrap().is_none());
        }
        assert_eq!(store.db_reads(), 2);
        // A known one once per hash family, then from memory.
        for _ in 0..3 {
            for hash in HASHES {
                assert!(store.scram("alice", hash).unwrap().is_some());
            }
        }
        assert_eq!(store.db_reads(), 4);
        assert!(store.check_password("alice", "first-pw"));
        assert_eq!(store.db_reads(), 4);
        // The account deleted by another program and created anew here:
        // the new keys at once, not the ones kept.
        store
            .db()
            .execute("DELETE FROM scram_credentials WHERE username = 'alice'", [])
            .unwrap();
        store.create("alice", "second-pw").unwrap();
        assert!(store.check_password("alice", "second-pw"));
        assert!(!store.check_password("alice", "first-pw"));
        assert_eq!(store.db_reads(), 5);
        // Without a life, nothing is kept; with room for two names, never
        // more than two.
        let store = Store::in_memory(4096)
            .unwrap()
            .with_cache(Duration::ZERO, 10);
        store.create("alice", "pw").unwrap();
        store.scram("alice", ScramHash::Sha256).unwrap();
        store.scram("alice", ScramHash::Sha256).unwrap();
        assert_eq!((store.db_reads(), store.cached()), (2, 0));
        let store = Store::in_memory(4096).unwrap().with_cache(CACHE_LIFE, 2);
        for name in ["a", "b", "c", "d", "e"] {
            store.create(name, "pw").unwrap();
            store.scram(name, ScramHash::Sha256).unwrap().unwrap();
            assert!(store.cached() <= 2, "{name}");
        }
    }
}
