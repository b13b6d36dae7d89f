//! A FAST token and what a server keeps of a client's tokens.

use std::fmt;

use crate::sasl::Secret;

/// A FAST token (XEP-0484): the secret the server issued in a
/// `<token/>`, the mechanism it is bound to (the one the client named in
/// `<request-token/>`: the server refuses it with any other), and its
/// expiry. `Debug` never shows the secret.
///
/// Plain data: a client host stores it (in a file, a keychain) and gives it
/// back for the next login; a server host keeps it in its token store
/// ([`TokenSlots`]).
#[derive(Clone, PartialEq, Eq)]
pub struct FastToken {
    /// The `HT-*` mechanism the token is bound to.
    pub mechanism: String,
    /// The token itself (the HMAC key, used as UTF-8 exactly as issued).
    pub token: Secret,
    /// When it expires.
    pub expiry: Expiry,
    /// The replay counter of XEP-0484 section 3.4 (`<fast count/>`): on
    /// the client, the count it sent on its last login with this token
    /// (0: none yet; [`FastPolicy::send_count`](crate::fast::FastPolicy::send_count));
    /// on the server, the highest count a login with this token carried
    /// ([`TokenSlots::record_use`]): a login whose count is not above it
    /// is refused as a replay. A new token starts at 0.
    pub count: u32,
}

impl FastToken {
    /// A token for `mechanism`.
    pub fn new(mechanism: impl Into<String>, token: impl Into<Secret>, expiry: Expiry) -> Self {
        Self {
            mechanism: mechanism.into(),
            token: token.into(),
            expiry,
            count: 0,
        }
    }

    /// Whether it has expired at `now_unix` (seconds since the Unix
    /// epoch, from the host's clock: the core reads none).
    pub fn is_expired_at(&self, now_unix: i64) -> bool {
        self.expiry.unix_seconds() <= now_unix
    }
}

impl fmt::Debug for FastToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastToken")
            .field("mechanism", &self.mechanism)
            .field("token", &self.token)
            .field("expiry", &self.expiry)
            .field("count", &self.count)
            .finish()
    }
}

/// The two token slots a server keeps per client (XEP-0484 section 6.1):
/// the token in use and the one issued last and not yet used. A host
/// answers a [`CredentialRequest::FastToken`](crate::sasl::CredentialRequest::FastToken)
/// with them ([`CredentialAnswer::FastTokens`](crate::sasl::CredentialAnswer::FastTokens)),
/// leaving out tokens that have expired or that it no longer trusts (a
/// password change, a revocation): the mechanism then fails with
/// `credentials-expired`. Issuing a token puts it in `new`; a login with
/// the `new` token ([`TokenSlot::New`] in
/// [`ExchangeSecurity::fast_token`](crate::sasl::ExchangeSecurity::fast_token))
/// moves it to `current`, dropping the old one ([`promote`](Self::promote),
/// or [`record_use`](Self::record_use), which also keeps the login's
/// replay counter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSlots {
    /// The token the client logged in with last.
    pub current: Option<FastToken>,
    /// The token issued last, not used yet.
    pub new: Option<FastToken>,
}

impl TokenSlots {
    /// Keeps `token`, just issued, in the `new` slot (replacing a token
    /// issued earlier and never used).
    pub fn issue(&mut self, token: FastToken) {
        self.new = Some(token);
    }

    /// After a login with the token of `slot`: the `new` token becomes
    /// the current one and the old current one is dropped; a login with
    /// the current token changes nothing.
    pub fn promote(&mut self, slot: TokenSlot) {
        if slot == TokenSlot::New {
            if let Some(t) = self.new.take() {
                self.current = Some(t);
            }
        }
    }

    /// After a login with the token of `slot` that carried `count`
    /// ([`ServerEvent::IssueFastToken`](crate::server::ServerEvent::IssueFastToken)'s
    /// `used` and `count`): [`promote`](Self::promote), then the token in
    /// use remembers the count, so that a later login with the same count
    /// or a lower one is refused as a replay (XEP-0484 section 3.4). A
    /// login without a count changes no count.
    pub fn record_use(&mut self, slot: TokenSlot, count: Option<u32>) {
        self.promote(slot);
        if let (Some(c), Some(t)) = (count, self.current.as_mut()) {
            t.count = t.count.max(c);
        }
    }

    /// The client asked to invalidate the token it logged in with
    /// (`<fast invalidate='true'/>`): it leaves its slot.
    pub fn invalidate(&mut self, slot: TokenSlot) {
        match slot {
            TokenSlot::Current => self.current = None,
            TokenSlot::New => self.new = None,
        }
    }

    /// Drops the tokens that have expired at `now_unix` (Unix seconds).
    pub fn drop_expired(&mut self, now_unix: i64) {
        for slot in [&mut self.current, &mut self.new] {
            if slot.as_ref().is_some_and(|t| t.is_expired_at(now_unix)) {
                *slot = None;
            }
        }
    }
}

/// Which of a client's two token slots a FAST login used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSlot {
    /// The current token.
    Current,
    /// The newer token: the host promotes it ([`TokenSlots::promote`]).
    New,
}

/// A token's expiry: an XEP-0082 DateTime (`2026-12-14T06:42:18.991109Z`,
/// `2020-03-12T14:36:15+01:00`), kept as received and as Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expiry {
    text: String,
    unix: i64,
}

/// An `expiry` that is no XEP-0082 DateTime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadExpiry;

impl fmt::Display for BadExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an XEP-0082 DateTime")
    }
}

impl std::error::Error for BadExpiry {}

impl Expiry {
    /// Parses an XEP-0082 DateTime: `CCYY-MM-DDThh:mm:ss[.s+](Z|(+|-)hh:mm)`.
    pub fn parse(text: &str) -> Result<Self, BadExpiry> {
        let unix = parse_datetime(text).ok_or(BadExpiry)?;
        Ok(Self {
            text: text.to_owned(),
            unix,
        })
    }

    /// The expiry at `unix` seconds since the epoch, written in UTC
    /// (`CCYY-MM-DDThh:mm:ssZ`): how a server dates the token it issues.
    /// `None` outside the years 0000 to 9999.
    pub fn from_unix(unix: i64) -> Option<Self> {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        // Written digit by digit: a server dates every token it issues,
        // and `format!` costs more than the rest of this.
        let mut text = String::with_capacity(20);
        let mut digits = |n: i64, width: u32, after: Option<char>| {
            for i in (0..width).rev() {
                let d = (n / 10i64.pow(i)) % 10;
                text.push(char::from(b'0' + d as u8));
            }
            if let Some(c) = after {
                text.push(c);
            }
        };
        digits(y, 4, Some('-'));
        digits(m, 2, Some('-'));
        digits(d, 2, Some('T'));
        digits(secs / 3600, 2, Some(':'));
        digits(secs / 60 % 60, 2, Some(':'));
        digits(secs % 60, 2, Some('Z'));
        Some(Self { text, unix })
    }

    /// As it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Seconds since the Unix epoch (fractions of a second dropped).
    pub fn unix_seconds(&self) -> i64 {
        self.unix
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        &c @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_of_the_examples_parse() {
        // Prosody 13's token (tests/fixtures/fast/prosody13_sasl2_fast_ht_sha256_none.txt).
        let p = Expiry::parse("2026-12-14T06:42:18.991109Z").unwrap();
        assert_eq!(p.unix_seconds(), 1_797_230_538);
        // XEP-0484 example 3.
        let x = Expiry::parse("2020-03-12T14:36:15Z").unwrap();
        assert_eq!(x.unix_seconds(), 1_584_023_775);
        assert_eq!(x.as_str(), "2020-03-12T14:36:15Z");
        // An offset is subtracted.
        let o = Expiry::parse("2020-03-12T15:36:15+01:00").unwrap();
        assert_eq!(o.unix_seconds(), x.unix_seconds());
        assert_eq!(
            Expiry::from_unix(1_584_023_775).unwrap().as_str(),
            x.as_str()
        );
        assert_eq!(
            Expiry::from_unix(0).unwrap().as_str(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Expiry::from_unix(951_782_400).unwrap().as_str(),
            "2000-02-29T00:00:00Z"
        );
    }

    proptest::proptest! {
        /// Every second of the years 0000 to 9999 is written as a
        /// DateTime that parses back to it.
        #[test]
        fn from_unix_parses_back(unix in -62_167_219_200i64..253_402_300_800) {
            let e = Expiry::from_unix(unix).expect("in range");
            proptest::prop_assert_eq!(e.as_str().len(), 20);
            proptest::prop_assert_eq!(Expiry::parse(e.as_str()).unwrap().unix_seconds(), unix);
        }
    }

    #[test]
    fn bad_expiries_are_refused() {
        for bad in [
            "",
            "2020-03-12",
            "2020-03-12T14:36:15",
            "2020-13-12T14:36:15Z",
            "2021-02-29T14:36:15Z",
            "2020-03-12T24:00:00Z",
            "2020-03-12T14:36:15.Z",
            "2020-03-12T14:36:15+0100",
            "2020-03-12T14:36:15Zjunk",
            "２０20-03-12T14:36:15Z",
        ] {
            assert_eq!(Expiry::parse(bad), Err(BadExpiry), "{bad}");
        }
    }

    #[test]
    fn slots_rotate_as_xep_0484_describes() {
        let t = |s: &str, at| FastToken::new("HT-SHA-256-NONE", s, Expiry::from_unix(at).unwrap());
        let mut slots = TokenSlots::default();
        slots.issue(t("one", 100));
        slots.promote(TokenSlot::New);
        assert_eq!(slots.current, Some(t("one", 100)));
        assert_eq!(slots.new, None);
        slots.issue(t("two", 200));
        slots.promote(TokenSlot::Current);
        assert_eq!((slots.current.is_some(), slots.new.is_some()), (true, true));
        slots.promote(TokenSlot::New);
        assert_eq!(slots.current, Some(t("two", 200)));
        assert_eq!(slots.new, None);
        slots.issue(t("three", 300));
        slots.drop_expired(200);
        assert_eq!(slots.current, None);
        assert_eq!(slots.new, Some(t("three", 300)));
        slots.invalidate(TokenSlot::New);
        assert_eq!(slots, TokenSlots::default());
    }

    #[test]
    fn a_use_promotes_and_keeps_the_highest_count() {
        let t = |s: &str| FastToken::new("HT-SHA-256-NONE", s, Expiry::from_unix(100).unwrap());
        let mut slots = TokenSlots::default();
        slots.issue(t("one"));
        slots.record_use(TokenSlot::New, Some(3));
        assert_eq!(slots.new, None);
        assert_eq!(slots.current.as_ref().map(|t| t.count), Some(3));
        // No count: the count seen stays; a lower one does not lower it.
        slots.record_use(TokenSlot::Current, None);
        slots.record_use(TokenSlot::Current, Some(2));
        assert_eq!(slots.current.as_ref().map(|t| t.count), Some(3));
        slots.record_use(TokenSlot::Current, Some(7));
        assert_eq!(slots.current.as_ref().map(|t| t.count), Some(7));
        // A rotated token starts at zero and takes its own count.
        slots.issue(t("two"));
        slots.record_use(TokenSlot::New, Some(1));
        assert_eq!(
            slots.current.as_ref().map(|t| (t.token.expose(), t.count)),
            Some(("two", 1))
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let t = FastToken::new(
            "HT-SHA-256-NONE",
            "secret-token:fast-mqyGobDEhGqgZEBqK4omK7IpLGJuNQih7Yup",
            Expiry::from_unix(0).unwrap(),
        );
        let mut slots = TokenSlots::default();
        slots.issue(t.clone());
        for text in [format!("{t:?}"), format!("{slots:?}")] {
            assert!(!text.contains("mqyGob"), "{text}");
            assert!(text.contains("HT-SHA-256-NONE"), "{text}");
        }
    }
}
