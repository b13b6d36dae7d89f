//! XEP-0480 SCRAM upgrade tasks (`UPGR-SCRAM-SHA-256` and the others),
//! both sides: the server sends a salt and an iteration count in
//! `<task-data/>`, the client answers with the `SaltedPassword` it
//! computes from its password, and the server stores the StoredKey and
//! ServerKey derived from it. The password never crosses the stream.

use base64::Engine as _;
use minidom::Element;

use crate::ns;
use crate::sasl::scram::{
    mechanism_name, server_credentials_from_salted_password, ScramClientKeys, ScramClientSecret,
    ALL_HASHES,
};
use crate::sasl::{SaslError, ScramCredentials, ScramHash, Secret};
use crate::steps::name;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The task name of an upgrade to `hash`: `UPGR-SCRAM-SHA-256`... (never
/// `-PLUS`: channel binding has nothing to do with stored keys).
pub fn task_name(hash: ScramHash) -> String {
    format!("UPGR-{}", mechanism_name(hash, false))
}

/// The hash of an upgrade task name; `None` for any other task.
pub fn parse_task(task: &str) -> Option<ScramHash> {
    ALL_HASHES.into_iter().find(|h| task_name(*h) == task)
}

/// Server: `<salt xmlns='urn:xmpp:scram-upgrade:0' iterations>base64</salt>`.
pub fn salt_element(salt: &[u8], iterations: u32) -> Element {
    Element::builder("salt", ns::SCRAM_UPGRADE)
        .attr(name("iterations"), iterations.to_string())
        .append(B64.encode(salt))
        .build()
}

/// Client: the `<hash/>` answer to the server's task data, computed from
/// `password` (PBKDF2, at most `max_iterations`, at least
/// `min_iterations`, as for a login).
pub fn client_answer(
    hash: ScramHash,
    password: &Secret,
    task_data: &[Element],
    min_iterations: u32,
    max_iterations: u32,
) -> Result<Element, SaslError> {
    let salt_el = task_data
        .iter()
        .find(|e| e.is("salt", ns::SCRAM_UPGRADE))
        .ok_or(SaslError::malformed("upgrade task data without a salt"))?;
    let iterations = salt_el
        .attr("iterations")
        .and_then(crate::steps::sm::parse_u32)
        .ok_or(SaslError::malformed(
            "upgrade salt without an iteration count",
        ))?;
    if iterations < min_iterations || iterations > max_iterations {
        return Err(SaslError::malformed(
            "upgrade iteration count outside the accepted range",
        ));
    }
    let salt = B64
        .decode(salt_el.text().trim())
        .map_err(|_| SaslError::malformed("upgrade salt is not base64"))?;
    let keys = ScramClientKeys::derive(hash, password.expose(), &salt, iterations)?;
    let ScramClientSecret::SaltedPassword(salted) = &keys.secret else {
        return Err(SaslError::malformed("no salted password derived"));
    };
    Ok(Element::builder("hash", ns::SCRAM_UPGRADE)
        .append(B64.encode(salted.expose()))
        .build())
}

/// Server: the credentials to store from the client's `<hash/>`.
pub fn server_credentials(
    hash: ScramHash,
    salt: &[u8],
    iterations: u32,
    task_data: &[Element],
) -> Result<ScramCredentials, SaslError> {
    let h = task_data
        .iter()
        .find(|e| e.is("hash", ns::SCRAM_UPGRADE))
        .ok_or(SaslError::malformed("upgrade task data without a hash"))?;
    let salted = zeroize::Zeroizing::new(
        B64.decode(h.text().trim())
            .map_err(|_| SaslError::malformed("upgrade hash is not base64"))?,
    );
    server_credentials_from_salted_password(hash, &salted, salt, iterations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::scram::derive_server_credentials;

    /// Names, and a round trip that stores what a password login derives.
    #[test]
    fn a_client_answer_gives_the_credentials_of_the_password() {
        assert_eq!(task_name(ScramHash::Sha256), "UPGR-SCRAM-SHA-256");
        assert_eq!(parse_task("UPGR-SCRAM-SHA-512"), Some(ScramHash::Sha512));
        assert_eq!(parse_task("UPGR-SCRAM-SHA-256-PLUS"), None);
        let salt = b"0123456789abcdef";
        let data = [salt_element(salt, 4096)];
        let answer = client_answer(
            ScramHash::Sha256,
            &Secret::new("pencil"),
            &data,
            4096,
            10_000,
        )
        .unwrap();
        let creds = server_credentials(ScramHash::Sha256, salt, 4096, &[answer]).unwrap();
        assert_eq!(
            creds,
            derive_server_credentials(ScramHash::Sha256, "pencil", salt, 4096).unwrap()
        );
        // Too many iterations, no salt, a hash of the wrong length.
        let many = [salt_element(salt, 20_000)];
        assert!(client_answer(ScramHash::Sha256, &Secret::new("p"), &many, 4096, 10_000).is_err());
        assert!(client_answer(ScramHash::Sha256, &Secret::new("p"), &[], 4096, 10_000).is_err());
        let short = Element::builder("hash", ns::SCRAM_UPGRADE)
            .append("AAAA")
            .build();
        assert!(server_credentials(ScramHash::Sha256, salt, 4096, &[short]).is_err());
    }
}
