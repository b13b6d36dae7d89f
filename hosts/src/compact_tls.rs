//! A server's TLS connection after the handshake that holds only its
//! traffic secrets: the record layer (RFC 8446 section 5, RFC 5246
//! section 6.2.3.3, RFC 7905) done here with ring's AEADs, so an idle
//! connection keeps no buffer and no expanded key.
//!
//! Why: rustls's buffered `ServerConnection` keeps its 4 KiB deframer
//! buffer for life, its handshake joiner, both directions' expanded AES-GCM
//! keys (about 1 KiB) and its state (about 1.1 KiB inline), about 7 KiB per
//! idle connection: half of what an idle session of `xmpp-server-async`
//! held. Here an idle connection is its socket, the two directions' keys,
//! IVs, traffic secrets and sequence numbers, and three empty vectors
//! (about 300 bytes); a key is expanded for each read or write, which is
//! cheap beside the system call.
//!
//! rustls does the handshake ([`handshake`]): it is fed one whole record at
//! a time, so that it has taken nothing beyond the client's `Finished`
//! when the handshake ends; what came after stays here. The host reads
//! what it needs of the finished connection (the `tls-exporter` channel
//! binding, the client's certificate) and then [`Handshake::into_stream`]
//! takes its secrets (`dangerous_extract_secrets`, which needs the
//! configuration's `enable_secret_extraction`, see `configure`). The TLS
//! 1.3 traffic secrets themselves (for a `KeyUpdate`, which rustls's
//! extraction does not carry) come from the configuration's key log,
//! which keeps them only while this module's handshake processes a record
//! on this thread and hands them to that connection alone.
//!
//! Writes are sealed into a buffer and written on `flush` or `shutdown`
//! (the tokio driver flushes after each step's bytes), so that one step
//! is one system call with whatever waited: the TLS 1.3 session tickets
//! (held from the handshake's end until the first write), an answer to a
//! `KeyUpdate`, or the `close_notify` after the last bytes.
//!
//! What the stream does: application data both ways; `close_notify` both
//! ways; a TLS 1.3 `KeyUpdate` from the client (answered with ours when it
//! asks); our own `KeyUpdate` before the AES-GCM confidentiality limit. It
//! refuses, with a fatal alert and an error: a record that does not
//! authenticate, a record too long, an unexpected record or handshake
//! message (a TLS 1.2 renegotiation, a handshake message split over
//! records), a fatal alert from the peer (reported).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use rustls::server::{Accepted, AcceptedAlert, Acceptor};
use rustls::{ConnectionTrafficSecrets, ServerConnection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use zeroize::Zeroize;

use crate::tokio::BoxStream;

/// The largest plaintext of a record.
const MAX_PLAIN: usize = 1 << 14;
/// The largest record body accepted (TLS 1.2's ciphertext bound, above
/// TLS 1.3's 2^14 + 256).
const MAX_BODY: usize = MAX_PLAIN + 2048;
/// The AEAD tag.
const TAG: usize = 16;
/// TLS 1.2 AES-GCM's explicit nonce, sent in each record.
const EXPLICIT: usize = 8;
/// Records sent under one AES-GCM key before we update it (RFC 8446
/// section 5.5: 2^24.5 full-size records; rustls uses 2^23 too).
const GCM_LIMIT: u64 = 1 << 23;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;
const CLOSE_NOTIFY: u8 = 0;
const USER_CANCELED: u8 = 90;
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const DECODE_ERROR: u8 = 50;
const NO_RENEGOTIATION: u8 = 100;

/// The labels of the key log kept: the TLS 1.3 application traffic
/// secrets, for key updates.
const CLIENT_TRAFFIC: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER_TRAFFIC: &str = "SERVER_TRAFFIC_SECRET_0";

/// Sets what this module needs on a server configuration: secret
/// extraction, and the key log that hands a handshake its traffic secrets.
pub(crate) fn configure(config: &mut rustls::ServerConfig) {
    config.enable_secret_extraction = true;
    config.key_log = Arc::new(TrafficSecrets);
}

thread_local! {
    /// The traffic secrets logged on this thread while [`handshake`]
    /// processes a record (`None`: nobody is listening; a rustls
    /// connection of another host using the same configuration logs
    /// nothing).
    static LOGGED: RefCell<Option<Secrets>> = const { RefCell::new(None) };
}

/// The client's and the server's TLS 1.3 application traffic secrets.
#[derive(Default)]
struct Secrets {
    client: Option<Secret>,
    server: Option<Secret>,
}

/// A traffic secret (SHA-256 or SHA-384: 32 or 48 bytes), wiped on drop.
#[derive(Clone)]
struct Secret {
    bytes: [u8; 48],
    len: u8,
}

impl Secret {
    fn new(s: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 48];
        bytes.get_mut(..s.len())?.copy_from_slice(s);
        Some(Self {
            bytes,
            len: s.len() as u8,
        })
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// The key log of [`configure`].
#[derive(Debug)]
struct TrafficSecrets;

impl rustls::KeyLog for TrafficSecrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        LOGGED.with_borrow_mut(|slot| {
            if let Some(s) = slot {
                match label {
                    CLIENT_TRAFFIC => s.client = Secret::new(secret),
                    SERVER_TRAFFIC => s.server = Secret::new(secret),
                    _ => {}
                }
            }
        });
    }

    fn will_log(&self, label: &str) -> bool {
        (label == CLIENT_TRAFFIC || label == SERVER_TRAFFIC)
            && LOGGED.with_borrow(|slot| slot.is_some())
    }
}

/// `f()` (rustls processing handshake messages), keeping the traffic
/// secrets it logs.
fn logged<R>(into: &mut Secrets, f: impl FnOnce() -> R) -> R {
    LOGGED.with_borrow_mut(|slot| *slot = Some(Secrets::default()));
    let result = f();
    if let Some(s) = LOGGED.with_borrow_mut(|slot| slot.take()) {
        if s.client.is_some() {
            into.client = s.client;
        }
        if s.server.is_some() {
            into.server = s.server;
        }
    }
    result
}

/// `conn.process_new_packets()`, keeping the traffic secrets it logs.
fn process(conn: &mut ServerConnection, into: &mut Secrets) -> Result<(), rustls::Error> {
    logged(into, || conn.process_new_packets()).map(|_| ())
}

/// A finished handshake: the connection (for what the host reads of it)
/// and what [`Handshake::into_stream`] needs.
pub struct Handshake {
    conn: ServerConnection,
    io: BoxStream,
    /// Bytes received after the client's `Finished`.
    rest: Vec<u8>,
    /// What rustls had still to send when its TLS 1.3 handshake ended (its
    /// session tickets): sent with the stream's first write.
    unsent: Vec<u8>,
    secrets: Secrets,
}

impl Handshake {
    /// The rustls connection, its handshake done.
    pub fn conn(&self) -> &ServerConnection {
        &self.conn
    }

    /// Bytes received after the client's `Finished` (read from the socket
    /// with it; the stream's first).
    pub fn received_after(&self) -> usize {
        self.rest.len()
    }

    /// Bytes of rustls's last records (a TLS 1.3 server's session
    /// tickets) not sent yet: the stream sends them with its first write.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// The stream: the connection's secrets taken from rustls.
    pub fn into_stream(self) -> Result<CompactTls, String> {
        let Handshake {
            conn,
            io,
            rest,
            unsent,
            secrets,
        } = self;
        let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        let extracted = conn
            .dangerous_extract_secrets()
            .map_err(|e| format!("tls: extracting the traffic keys: {e}"))?;
        let (tx_seq, tx) = extracted.tx;
        let (rx_seq, rx) = extracted.rx;
        let mut tx = Keys::new(tx, tx_seq)?;
        let mut rx = Keys::new(rx, rx_seq)?;
        if tx.cipher != rx.cipher {
            return Err("tls: the two directions' ciphers differ".into());
        }
        if tls13 {
            tx.secret = secrets.server;
            rx.secret = secrets.client;
        }
        Ok(CompactTls {
            io,
            tls13,
            rx,
            tx,
            // No room kept for nothing.
            inbuf: if rest.is_empty() { Vec::new() } else { rest },
            plain: Vec::new(),
            outbuf: unsent,
            read_closed: false,
            close_sent: false,
        })
    }
}

/// The server side of a TLS handshake with `conn` on `io`: rustls is fed
/// one whole record at a time, and stops being fed when its handshake is
/// done, so the bytes after the client's `Finished` stay in the
/// [`Handshake`] (nothing is left inside rustls to be lost when its
/// secrets are taken). A failed handshake's alert is sent.
pub async fn handshake(conn: ServerConnection, io: BoxStream) -> Result<Handshake, String> {
    finish(conn, io, Vec::new(), Secrets::default()).await
}

/// [`handshake`] with the connection made from the client's hello:
/// `choose` gets it (rustls's [`Accepted`]) and makes the connection with
/// the configuration it picks for that client (see
/// [`crate::server_tls::TlsSetup::accept_hello`]).
pub async fn handshake_from_hello(
    mut io: BoxStream,
    choose: impl FnOnce(Accepted) -> Result<ServerConnection, (rustls::Error, AcceptedAlert)>,
) -> Result<Handshake, String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        let len = read_record(&mut io, &mut buf).await?;
        let mut record = &buf[..len];
        while !record.is_empty() {
            acceptor
                .read_tls(&mut record)
                .map_err(|e| format!("tls handshake: {e}"))?;
        }
        buf.drain(..len);
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, alert)) => return Err(refused(e, alert, &mut io).await),
        }
    };
    let mut secrets = Secrets::default();
    match logged(&mut secrets, || choose(accepted)) {
        Ok(conn) => finish(conn, io, buf, secrets).await,
        Err((e, alert)) => Err(refused(e, alert, &mut io).await),
    }
}

/// A hello refused: its alert sent if it can be, the error.
async fn refused(e: rustls::Error, mut alert: AcceptedAlert, io: &mut BoxStream) -> String {
    let mut out = Vec::new();
    if alert.write_all(&mut out).is_ok() && !out.is_empty() {
        let _ = io.write_all(&out).await;
        let _ = io.flush().await;
    }
    format!("tls handshake: {e}")
}

/// The handshake of `conn` from here (`buf`: whole or partial records
/// received and not given to it).
async fn finish(
    mut conn: ServerConnection,
    mut io: BoxStream,
    mut buf: Vec<u8>,
    mut secrets: Secrets,
) -> Result<Handshake, String> {
    let tls13 = loop {
        // TLS 1.3: what rustls has to send once the client's Finished is
        // in (its session tickets) waits for the stream's first write,
        // one write instead of two. TLS 1.2's last flight (the server's
        // Finished after the client's) is sent now: the client waits for
        // it.
        let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if !conn.is_handshaking() && tls13 {
            break true;
        }
        write_pending(&mut conn, &mut io).await?;
        if !conn.is_handshaking() {
            break false;
        }
        let len = read_record(&mut io, &mut buf).await?;
        let mut record = &buf[..len];
        while !record.is_empty() {
            conn.read_tls(&mut record)
                .map_err(|e| format!("tls handshake: {e}"))?;
        }
        buf.drain(..len);
        if let Err(e) = process(&mut conn, &mut secrets) {
            // The alert rustls queued for the peer, if it can be sent.
            let _ = write_pending(&mut conn, &mut io).await;
            return Err(format!("tls handshake: {e}"));
        }
    };
    let mut unsent = Vec::new();
    while tls13 && conn.wants_write() {
        conn.write_tls(&mut unsent)
            .map_err(|e| format!("tls handshake: {e}"))?;
    }
    Ok(Handshake {
        conn,
        io,
        rest: buf,
        unsent,
        secrets,
    })
}

/// Reads until `buf` starts with a whole record: its length.
async fn read_record(io: &mut BoxStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        if let Some(len) = record_len(buf)? {
            return Ok(len);
        }
        let old = buf.len();
        buf.resize(old + 4096, 0);
        let n = io
            .read(&mut buf[old..])
            .await
            .map_err(|e| format!("tls handshake: {e}"))?;
        buf.truncate(old + n);
        if n == 0 {
            return Err("tls handshake: the peer closed the connection".into());
        }
    }
}

/// Writes what rustls has to send.
async fn write_pending(conn: &mut ServerConnection, io: &mut BoxStream) -> Result<(), String> {
    if !conn.wants_write() {
        return Ok(());
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)
            .map_err(|e| format!("tls handshake: {e}"))?;
    }
    io.write_all(&out)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    io.flush().await.map_err(|e| format!("tls handshake: {e}"))
}

/// The length of the whole record at the start of `buf` (header
/// included), once it is all there.
fn record_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let Some(h) = buf.get(..5) else {
        return Ok(None);
    };
    let body = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if body > MAX_BODY {
        return Err(format!("tls: a record of {body} bytes"));
    }
    Ok((buf.len() >= 5 + body).then_some(5 + body))
}

/// The AEAD of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Cipher {
    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Cipher::Aes128Gcm => &aead::AES_128_GCM,
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// The TLS 1.3 suite's hash, for key updates.
    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Cipher::Aes256Gcm => hkdf::HKDF_SHA384,
            _ => hkdf::HKDF_SHA256,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            _ => 32,
        }
    }

    /// Records to send under one key (ChaCha20-Poly1305: no practical
    /// limit).
    fn limit(self) -> u64 {
        match self {
            Cipher::Chacha20Poly1305 => u64::MAX,
            _ => GCM_LIMIT,
        }
    }
}

/// One direction's keys: the AEAD key and IV (expanded into a ring key for
/// each use), the TLS 1.3 traffic secret they came from, the sequence
/// number.
struct Keys {
    cipher: Cipher,
    key: [u8; 32],
    iv: [u8; 12],
    secret: Option<Secret>,
    seq: u64,
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
    }
}

impl Keys {
    fn new(secrets: ConnectionTrafficSecrets, seq: u64) -> Result<Self, String> {
        let (cipher, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Cipher::Chacha20Poly1305, key, iv)
            }
            _ => return Err("tls: a cipher this host cannot take over".into()),
        };
        let mut keys = Keys {
            cipher,
            key: [0; 32],
            iv: [0; 12],
            secret: None,
            seq,
        };
        keys.key
            .get_mut(..key.as_ref().len())
            .ok_or("tls: a key too long")?
            .copy_from_slice(key.as_ref());
        if iv.as_ref().len() != 12 || key.as_ref().len() != cipher.key_len() {
            return Err("tls: a key or IV of the wrong length".into());
        }
        keys.iv.copy_from_slice(iv.as_ref());
        Ok(keys)
    }

    /// The ring key, expanded now.
    fn ring(&self) -> io::Result<LessSafeKey> {
        UnboundKey::new(self.cipher.aead(), &self.key[..self.cipher.key_len()])
            .map(LessSafeKey::new)
            .map_err(|_| invalid("tls: a bad key"))
    }

    /// The IV with the sequence number mixed in (RFC 8446 section 5.3;
    /// the same for TLS 1.2 ChaCha20-Poly1305, and the nonce a TLS 1.2
    /// AES-GCM record's explicit part is taken from).
    fn nonce(&self) -> [u8; 12] {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }

    /// The next generation of a TLS 1.3 direction's keys (RFC 8446
    /// section 7.2): its secret, key and IV, the sequence number back to 0.
    fn update(&mut self) -> io::Result<()> {
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| invalid("tls: no traffic secret for a key update"))?;
        let alg = self.cipher.hkdf();
        let hash_len = secret.get().len();
        let mut next = [0u8; 48];
        expand_label(alg, secret.get(), b"traffic upd", &mut next[..hash_len])?;
        let next = Secret::new(&next[..hash_len]).ok_or_else(|| invalid("tls: secret"))?;
        let key_len = self.cipher.key_len();
        expand_label(alg, next.get(), b"key", &mut self.key[..key_len])?;
        expand_label(alg, next.get(), b"iv", &mut self.iv)?;
        self.secret = Some(next);
        self.seq = 0;
        Ok(())
    }
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
fn expand_label(
    alg: hkdf::Algorithm,
    secret: &[u8],
    label: &[u8],
    out: &mut [u8],
) -> io::Result<()> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [6 + label.len() as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    hkdf::Prk::new_less_safe(alg, secret)
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| invalid("tls: HKDF"))
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

/// A record's failure: the alert to send, the error to report.
fn fatal(alert: u8, why: &str) -> (u8, io::Error) {
    (alert, invalid(why))
}

/// Protects one record of `kind` carrying `plain` with `keys`, appended to
/// `out`.
fn seal(keys: &mut Keys, tls13: bool, kind: u8, plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let key = keys.ring()?;
    let nonce = keys.nonce();
    let start = out.len();
    let explicit = if !tls13 && keys.cipher != Cipher::Chacha20Poly1305 {
        EXPLICIT
    } else {
        0
    };
    let inner = plain.len() + usize::from(tls13);
    let body = explicit + inner + TAG;
    let outer = if tls13 { APPLICATION_DATA } else { kind };
    // One allocation for the record, not one per growth.
    out.reserve(5 + body);
    out.extend_from_slice(&[outer, 3, 3]);
    out.extend_from_slice(&(body as u16).to_be_bytes());
    out.extend_from_slice(&nonce[4..4 + explicit]);
    out.extend_from_slice(plain);
    if tls13 {
        out.push(kind);
    }
    let tag = if tls13 {
        let header: [u8; 5] = out[start..start + 5]
            .try_into()
            .map_err(|_| invalid("tls"))?;
        key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut out[start + 5..],
        )
    } else {
        let aad = tls12_aad(keys.seq, kind, plain.len());
        key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[start + 5 + explicit..],
        )
    }
    .map_err(|_| invalid("tls: sealing a record"))?;
    out.extend_from_slice(tag.as_ref());
    keys.seq += 1;
    Ok(())
}

/// TLS 1.2's additional data: sequence number, type, version, length.
fn tls12_aad(seq: u64, kind: u8, len: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = kind;
    aad[9..11].copy_from_slice(&[3, 3]);
    aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
    aad
}

/// Opens the record `rec` (header included) in place: its content type
/// and the range of its plaintext in `rec`.
fn open(
    keys: &mut Keys,
    tls13: bool,
    rec: &mut [u8],
) -> Result<(u8, std::ops::Range<usize>), (u8, io::Error)> {
    let key = keys.ring().map_err(|e| (BAD_RECORD_MAC, e))?;
    let header: [u8; 5] = rec[..5]
        .try_into()
        .map_err(|_| fatal(DECODE_ERROR, "tls: short record"))?;
    let opened = if tls13 {
        if header[0] != APPLICATION_DATA {
            return Err(fatal(UNEXPECTED_MESSAGE, "tls: an unprotected record"));
        }
        if rec.len() - 5 > MAX_PLAIN + 256 {
            return Err(fatal(RECORD_OVERFLOW, "tls: a record too long"));
        }
        let nonce = Nonce::assume_unique_for_key(keys.nonce());
        let plain = key
            .open_in_place(nonce, Aad::from(header), &mut rec[5..])
            .map_err(|_| fatal(BAD_RECORD_MAC, "tls: a record that does not authenticate"))?;
        // The content type is the last byte not zero (padding after it).
        let end = plain
            .iter()
            .rposition(|&b| b != 0)
            .ok_or_else(|| fatal(UNEXPECTED_MESSAGE, "tls: a record without a content type"))?;
        let kind = plain[end];
        (kind, 5..5 + end)
    } else {
        let explicit = if keys.cipher == Cipher::Chacha20Poly1305 {
            0
        } else {
            EXPLICIT
        };
        let body = rec.len() - 5;
        if body < explicit + TAG {
            return Err(fatal(DECODE_ERROR, "tls: a record too short"));
        }
        let nonce = if explicit == 0 {
            keys.nonce()
        } else {
            let mut n = [0u8; 12];
            n[..4].copy_from_slice(&keys.iv[..4]);
            n[4..].copy_from_slice(&rec[5..5 + EXPLICIT]);
            n
        };
        let aad = tls12_aad(keys.seq, header[0], body - explicit - TAG);
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut rec[5 + explicit..],
            )
            .map_err(|_| fatal(BAD_RECORD_MAC, "tls: a record that does not authenticate"))?;
        let len = plain.len();
        (header[0], 5 + explicit..5 + explicit + len)
    };
    if opened.1.len() > MAX_PLAIN {
        return Err(fatal(RECORD_OVERFLOW, "tls: a plaintext too long"));
    }
    keys.seq += 1;
    Ok(opened)
}

/// Bytes read from the socket at most at once: a whole largest record.
const READ_CHUNK: usize = 5 + MAX_BODY;

thread_local! {
    /// The socket reads of the streams on this thread: borrowed only
    /// inside one `poll_read`, so an idle stream holds no buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// A server's TLS stream after the handshake (see the module's docs).
pub struct CompactTls {
    io: BoxStream,
    tls13: bool,
    rx: Keys,
    tx: Keys,
    /// Received bytes not yet a whole record (empty and unallocated when
    /// idle).
    inbuf: Vec<u8>,
    /// Plaintext opened and not yet read.
    plain: Vec<u8>,
    /// Protected records not yet written.
    outbuf: Vec<u8>,
    read_closed: bool,
    close_sent: bool,
}

impl std::fmt::Debug for CompactTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactTls")
            .field("tls13", &self.tls13)
            .field("cipher", &self.rx.cipher)
            .finish_non_exhaustive()
    }
}

impl CompactTls {
    /// Bytes held in buffers now (0 when idle).
    pub fn buffered(&self) -> usize {
        self.inbuf.capacity() + self.plain.capacity() + self.outbuf.capacity()
    }

    /// The negotiated AEAD's name, for tests and logs.
    pub fn cipher(&self) -> &'static str {
        match self.rx.cipher {
            Cipher::Aes128Gcm => "AES_128_GCM",
            Cipher::Aes256Gcm => "AES_256_GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20_POLY1305",
        }
    }

    /// Appends a fatal alert for the peer (sent on the next write or
    /// flush, or at once if the socket takes it).
    fn alert(&mut self, cx: &mut Context<'_>, description: u8) {
        let mut out = std::mem::take(&mut self.outbuf);
        if seal(&mut self.tx, self.tls13, ALERT, &[2, description], &mut out).is_ok() {
            self.outbuf = out;
            let _ = self.poll_write_out(cx);
        }
        self.close_sent = true;
        self.read_closed = true;
    }

    /// Writes `outbuf` to the socket; `Ready(Ok)` once it is all written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut done = 0;
        let result = loop {
            if done == self.outbuf.len() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.outbuf[done..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => done += n,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        };
        if done == self.outbuf.len() {
            self.outbuf = Vec::new();
        } else {
            self.outbuf.drain(..done);
        }
        result
    }

    /// Seals `data` as application data records into `outbuf` (a key
    /// update of ours first when the key is worn out).
    fn seal_data(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_PLAIN) {
            if self.tx.seq >= self.tx.cipher.limit() {
                if !self.tls13 || self.tx.secret.is_none() {
                    return Err(invalid("tls: the key's record limit is reached"));
                }
                seal(
                    &mut self.tx,
                    true,
                    HANDSHAKE,
                    &[KEY_UPDATE, 0, 0, 1, 0],
                    &mut self.outbuf,
                )?;
                self.tx.update()?;
            }
            seal(
                &mut self.tx,
                self.tls13,
                APPLICATION_DATA,
                chunk,
                &mut self.outbuf,
            )?;
        }
        Ok(())
    }

    /// What one opened record means: its application data appended to
    /// `plain`; `Ok(false)` for the peer's `close_notify`.
    fn take_record(&mut self, kind: u8, body: &[u8]) -> Result<bool, (u8, io::Error)> {
        match kind {
            APPLICATION_DATA => {
                self.plain.extend_from_slice(body);
                Ok(true)
            }
            ALERT => match body {
                [_, CLOSE_NOTIFY] => Ok(false),
                [1, USER_CANCELED] | [1, _] if !self.tls13 => Ok(true),
                [_, USER_CANCELED] => Ok(true),
                [_, d] => Err((
                    0,
                    io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("tls: the peer sent alert {d}"),
                    ),
                )),
                _ => Err(fatal(DECODE_ERROR, "tls: a malformed alert")),
            },
            HANDSHAKE if self.tls13 => {
                // Whole messages only: a KeyUpdate (its one byte says
                // whether ours is asked for).
                match body {
                    [KEY_UPDATE, 0, 0, 1, ask @ (0 | 1)] => {
                        self.rx.update().map_err(|e| (UNEXPECTED_MESSAGE, e))?;
                        if *ask == 1 {
                            let r = seal(
                                &mut self.tx,
                                true,
                                HANDSHAKE,
                                &[KEY_UPDATE, 0, 0, 1, 0],
                                &mut self.outbuf,
                            )
                            .and_then(|()| self.tx.update());
                            r.map_err(|e| (UNEXPECTED_MESSAGE, e))?;
                        }
                        Ok(true)
                    }
                    _ => Err(fatal(
                        UNEXPECTED_MESSAGE,
                        "tls: an unexpected handshake message after the handshake",
                    )),
                }
            }
            HANDSHAKE => Err(fatal(NO_RENEGOTIATION, "tls: renegotiation is refused")),
            _ => Err(fatal(UNEXPECTED_MESSAGE, "tls: an unexpected record")),
        }
    }

    /// Opens the whole records at the start of `buf` until some plaintext
    /// or the peer's `close_notify` came: how many bytes were taken.
    fn open_records(&mut self, buf: &mut [u8]) -> Result<usize, (u8, io::Error)> {
        let mut at = 0;
        while self.plain.is_empty() && !self.read_closed {
            let Some(len) = record_len(&buf[at..]).map_err(|e| (RECORD_OVERFLOW, invalid(&e)))?
            else {
                break;
            };
            let rec = &mut buf[at..at + len];
            let (kind, range) = open(&mut self.rx, self.tls13, rec)?;
            at += len;
            if !self.take_record(kind, &rec[range])? {
                self.read_closed = true;
            }
        }
        Ok(at)
    }
}

impl AsyncRead for CompactTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // What is sealed and not written (an answer to a KeyUpdate,
            // the session tickets) waits for the next write or flush:
            // RFC 8446 section 4.6.3 asks for our KeyUpdate before our
            // next application data only.
            if !this.plain.is_empty() {
                let n = this.plain.len().min(out.remaining());
                out.put_slice(&this.plain[..n]);
                if n == this.plain.len() {
                    this.plain = Vec::new();
                } else {
                    this.plain.drain(..n);
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            // Whole records already here first (the bytes after the
            // handshake, what a short read left).
            let mut inbuf = std::mem::take(&mut this.inbuf);
            let opened = this.open_records(&mut inbuf);
            match opened {
                Ok(at) => {
                    inbuf.drain(..at);
                    if !inbuf.is_empty() {
                        this.inbuf = inbuf;
                    }
                }
                Err((alert, e)) => {
                    if alert != 0 {
                        this.alert(cx, alert);
                    }
                    return Poll::Ready(Err(e));
                }
            }
            if !this.plain.is_empty() || this.read_closed {
                continue;
            }
            // Then the socket, into the thread's buffer: whole records are
            // opened there, a partial one's bytes kept.
            let read = SCRATCH.with_borrow_mut(|scratch| {
                let mut rb = ReadBuf::new(scratch);
                match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err((0, e))),
                    Poll::Pending => return Poll::Pending,
                }
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(0));
                }
                if !this.inbuf.is_empty() {
                    this.inbuf.extend_from_slice(&scratch[..n]);
                    return Poll::Ready(Ok(n));
                }
                let at = this.open_records(&mut scratch[..n])?;
                this.inbuf.extend_from_slice(&scratch[at..n]);
                Poll::Ready(Ok(n))
            });
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tls: the peer closed the connection without close_notify",
                    )))
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err((alert, e))) => {
                    if alert != 0 {
                        this.alert(cx, alert);
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsyncWrite for CompactTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Sealed records are written on flush (or shutdown), so that what
        // one step of the host writes goes in one system call with what
        // waited (the session tickets, a KeyUpdate; the close_notify
        // after a last write). At most a record's worth waits before
        // more is taken.
        if this.outbuf.len() >= MAX_PLAIN {
            if let Poll::Ready(Err(e)) = this.poll_write_out(cx) {
                return Poll::Ready(Err(e));
            }
            if this.outbuf.len() >= MAX_PLAIN {
                return Poll::Pending;
            }
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let take = data.len().min(MAX_PLAIN);
        this.seal_data(&data[..take])?;
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_write_out(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            let mut out = std::mem::take(&mut this.outbuf);
            seal(
                &mut this.tx,
                this.tls13,
                ALERT,
                &[1, CLOSE_NOTIFY],
                &mut out,
            )?;
            this.outbuf = out;
        }
        match this.poll_write_out(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_shutdown(cx),
            other => other,
        }
    }
}

/// The size of a stream's own state, inline (its socket aside; nothing
/// more while idle), for the memory figures.
pub const fn size() -> usize {
    std::mem::size_of::<CompactTls>()
}
