//! The client tools' `--fast-token-file F`: the FAST token (XEP-0484) a
//! server issued, kept between runs as three lines (mechanism, token,
//! expiry), readable by the owner only.

use std::path::Path;

use xmpp_sansio::fast::{Expiry, FastToken};

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
    Ok(Some(FastToken::new(mechanism, token, expiry)))
}

/// Keeps `token` in `path` (replacing what was there).
pub fn save(path: &Path, token: &FastToken) -> Result<(), String> {
    let text = format!(
        "{}\n{}\n{}\n",
        token.mechanism,
        token.token.expose(),
        token.expiry.as_str()
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
        assert_eq!(load(&dir), Ok(Some(t)));
        std::fs::write(&dir, "HT-SHA-256-EXPR\n").unwrap();
        assert!(load(&dir).is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
