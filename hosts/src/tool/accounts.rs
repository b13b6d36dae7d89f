//! What the example servers' account stores share (the in-memory one of
//! `server`, the SQLite one of `xmpp-server-async`): the user names they
//! accept, fresh salts, and a plaintext password checked against stored
//! SCRAM credentials.

use subtle::ConstantTimeEq;
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{ScramCredentials, ScramHash};
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio::{OsRandom, RandomSource};

/// A user name the example servers accept (for `--user` and
/// registration): a simple local part.
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@/:\"&'<>".contains(c))
}

/// The XEP-0077 form the example servers offer: a user name and a
/// password.
pub fn register_form() -> RegisterForm {
    RegisterForm {
        instructions: Some("Choose a user name and password to register with this server.".into()),
        fields: vec!["username".into(), "password".into()],
        ..RegisterForm::default()
    }
}

/// A fresh 16-byte salt from the OS.
pub fn salt() -> Vec<u8> {
    let mut s = vec![0u8; 16];
    OsRandom.fill(&mut s);
    s
}

/// Random characters that need no escaping anywhere (resources, names).
pub fn token(len: usize) -> String {
    xmpp_sansio::random::printable_token(&mut OsRandom, len).replace(['+', '/'], "x")
}

/// Whether `password` derives `stored` (the SCRAM `hash` credentials of
/// an account: PLAIN and legacy `<password/>` are checked this way), in
/// constant time. `known`: whether `stored` is the account's or a dummy's
/// (an unknown user costs the same PBKDF2, and fails).
pub fn password_matches(
    hash: ScramHash,
    stored: &ScramCredentials,
    password: &str,
    known: bool,
) -> bool {
    let Ok(derived) = derive_server_credentials(hash, password, &stored.salt, stored.iterations)
    else {
        return false; // not a valid SASLprep'd password
    };
    let same = derived
        .stored_key
        .expose()
        .ct_eq(stored.stored_key.expose())
        & derived
            .server_key
            .expose()
            .ct_eq(stored.server_key.expose());
    known && bool::from(same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords() {
        assert!(valid_username("user42"));
        for bad in ["", "a b", "a@b", "a/b", "a:b", "<x>", &"x".repeat(257)] {
            assert!(!valid_username(bad), "{bad:?}");
        }
        let stored = derive_server_credentials(ScramHash::Sha256, "pw", &salt(), 4096).unwrap();
        assert!(password_matches(ScramHash::Sha256, &stored, "pw", true));
        assert!(!password_matches(ScramHash::Sha256, &stored, "pw", false));
        assert!(!password_matches(ScramHash::Sha256, &stored, "pW", true));
        assert_ne!(salt(), salt());
        assert_eq!(token(10).len(), 10);
        assert!(!token(64).contains(['+', '/']));
    }
}
