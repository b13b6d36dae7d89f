//! The client tools' `--fast-token-file F`: the FAST token (XEP-0484) a
//! server issued, kept between runs as lines (mechanism, token, expiry,
//! then the replay count last sent: XEP-0484's `count`; a file of three
//! lines has count 0), readable by the owner only; and what the client
//! tools do with the FAST events ([`on_event`]).

use std::path::Path;

use xmpp_sansio::client::ClientEvent;
use xmpp_sansio::fast::{Expiry, FastToken};

use crate::tool::host::note;

/// The token kept in `path`: `Ok(None)` when there is no file.
pub fn load(path: &Path) -> Result<Option<FastToken>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut lines = text.lines();
    let (Some(mechanism), Some(token), Some(expiry)) = (lines.next(), lines.next(), lines.next())
    else {
        return Err(format!("{}: not a FAST token file", path.display()));
    };
    let expiry = Expiry::parse(expiry).map_err(|_| format!("{}: a bad expiry", path.display()))?;
    let count = match lines.next() {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| format!("{}: a bad count", path.display()))?,
    };
    let mut t = FastToken::new(mechanism, token, expiry);
    t.count = count;
    Ok(Some(t))
}

/// Keeps `token` in `path` (replacing what was there).
pub fn save(path: &Path, token: &FastToken) -> Result<(), String> {
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        token.mechanism,
        token.token.expose(),
        token.expiry.as_str(),
        token.count
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What the client tools do with a FAST event when they keep the token in
/// `path`: a token issued (or rotated) or counted replaces the file, one
/// refused or invalidated removes it. `Ok(false)`: not a FAST event.
pub fn on_event(path: Option<&Path>, ev: &ClientEvent) -> Result<bool, String> {
    match ev {
        ClientEvent::FastToken(token) => {
            if let Some(path) = path {
                save(path, token)?;
                note(&format!(
                    "FAST token for {} saved to {}",
                    token.mechanism,
                    path.display()
                ));
            }
        }
        ClientEvent::FastTokenCounted(token) => {
            if let Some(path) = path {
                save(path, token)?;
                note(&format!("FAST count {}", token.count));
            }
        }
        ClientEvent::FastTokenDiscarded { mechanism } => {
            if let Some(path) = path {
                let _ = std::fs::remove_file(path);
                note(&format!("FAST token for {mechanism} refused: removed"));
            }
        }
        ClientEvent::FastTokenInvalidated { mechanism } => {
            if let Some(path) = path {
                let _ = std::fs::remove_file(path);
                note(&format!(
                    "FAST token for {mechanism} invalidated by the server: removed"
                ));
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The wall clock, Unix seconds (against a token's expiry).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_token_loads_back() {
        let dir = std::env::temp_dir().join(format!("fast-token-file-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        assert_eq!(load(&dir), Ok(None));
        let t = FastToken::new(
            "HT-SHA-256-EXPR",
            "secret-token:abc",
            Expiry::parse("2026-12-14T06:42:18.991109Z").unwrap(),
        );
        save(&dir, &t).unwrap();
        assert_eq!(load(&dir), Ok(Some(t.clone())));
        let mut counted = t.clone();
        counted.count = 7;
        save(&dir, &counted).unwrap();
        assert_eq!(load(&dir).unwrap().map(|t| t.count), Some(7));
        // A file written before counts: count 0.
        std::fs::write(
            &dir,
            "HT-SHA-256-EXPR\nsecret-token:abc\n2026-12-14T06:42:18.991109Z\n",
        )
        .unwrap();
        assert_eq!(load(&dir), Ok(Some(t)));
        std::fs::write(
            &dir,
            "HT-SHA-256-EXPR\nsecret-token:abc\n2026-12-14T06:42:18.991109Z\nx\n",
        )
        .unwrap();
        assert!(load(&dir).is_err());
        std::fs::write(&dir, "HT-SHA-256-EXPR\n").unwrap();
        assert!(load(&dir).is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
