//! `xmpp-server-async --workers N`: N worker processes (one per core)
//! accept on one port (each its own listening socket with `SO_REUSEPORT`;
//! the kernel spreads the connections), share the SQLite database (WAL,
//! a busy timeout for writers) and route stanzas between their sessions.
//!
//! Each worker tells the others every full JID it binds and unbinds
//! (`B`/`U` frames), so every worker's [`Router`](crate::tool::router)
//! knows every session: a local one by its driver's handle, one of
//! another worker by that worker's link. A stanza routed to a remote
//! session is sent to its worker (`D` frame: the full JID, the sender,
//! the stanza) and handed there to the session's driver; if that session
//! is gone or far behind, the worker bounces it to the sender as a local
//! router would (`service-unavailable`, `resource-constraint`), routing
//! the error back the same way. Bare-JID delivery, fallbacks and
//! conflicts work across workers as within one, since every router holds
//! every binding (a bind racing with another worker's bind of the same
//! full JID is not detected: the later one wins in each router).
//!
//! The links are Unix stream sockets in a directory the parent creates
//! (`w<i>.sock`, one listener per worker), frames of a 4-byte big-endian
//! length and a body: a kind byte and fields separated by NUL (no JID or
//! serialized stanza holds a NUL). Frames waiting for a link are bounded
//! (`LINK_QUEUE`): beyond, a stanza is refused as `Full`.
//!
//! The parent ([`supervise`]) starts the workers (this binary again, with
//! `--worker I/N --peers DIR`), waits for each one's `LISTENING` line,
//! prints its own with the workers' process ids, and forwards their
//! output; a worker whose standard input closes (its parent is gone)
//! exits.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
use ::tokio::net::{UnixListener, UnixStream};
use ::tokio::sync::mpsc;
use minidom::Element;

use crate::tool::router::{error_reply, Refused};

use super::{Route, Shared};
use crate::tool::router::Mailbox;

/// Frames waiting for one link at most.
const LINK_QUEUE: usize = 65_536;
/// The longest frame read (a stanza is bounded by the core's limits
/// long before).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// How long a worker waits for another's socket to appear.
const CONNECT_FOR: Duration = Duration::from_secs(30);

/// Which worker this is, and the links to the others.
#[derive(Debug)]
pub struct Cluster {
    /// This worker's index.
    pub index: usize,
    /// The other workers' queues, by index (`None` for this one).
    links: Vec<Option<mpsc::Sender<Vec<u8>>>>,
}

/// `--worker I/N`: `(I, N)`.
pub fn parse_worker(v: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--worker: I/N with 0 <= I < N <= 64, not {v:?}");
    let (i, n) = v.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || n > 64 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The socket of worker `i` in `dir`.
fn socket_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("w{i}.sock"))
}

/// A frame: the kind byte, then the fields separated by NUL.
fn frame(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
    let len = 1 + fields.iter().map(|f| f.len() + 1).sum::<usize>() - 1;
    let mut out = Vec::with_capacity(4 + len.max(1));
    out.extend_from_slice(&(len.max(1) as u32).to_be_bytes());
    out.push(kind);
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            out.push(0);
        }
        out.extend_from_slice(f);
    }
    out
}

/// What a frame says.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Session `session` of the sending worker bound `full`.
    Bind { session: u64, full: String },
    /// It unbound it.
    Unbind { session: u64, full: String },
    /// Deliver this stanza (from `sender`) to the local session of `full`.
    Deliver {
        full: String,
        sender: String,
        stanza: String,
    },
}

fn parse_frame(body: &[u8]) -> Option<Frame> {
    let (&kind, rest) = body.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let mut f = text.splitn(3, '\0');
    match kind {
        b'B' | b'U' => {
            let session = f.next()?.parse().ok()?;
            let full = f.next()?.to_owned();
            Some(if kind == b'B' {
                Frame::Bind { session, full }
            } else {
                Frame::Unbind { session, full }
            })
        }
        b'D' => Some(Frame::Deliver {
            full: f.next()?.to_owned(),
            sender: f.next()?.to_owned(),
            stanza: f.next()?.to_owned(),
        }),
        _ => None,
    }
}

impl Cluster {
    /// Worker `index` of `n`, linked through the sockets of `dir`: starts
    /// this worker's listener (its frames applied to `shared`, once set)
    /// and a writer per other worker. Call on the runtime.
    pub fn start(
        index: usize,
        n: usize,
        dir: &Path,
        shared: Arc<std::sync::OnceLock<Arc<Shared>>>,
    ) -> Result<Self, String> {
        let path = socket_path(dir, index);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        ::tokio::spawn(accept_links(listener, shared));
        let mut links = Vec::with_capacity(n);
        for j in 0..n {
            if j == index {
                links.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            ::tokio::spawn(write_link(socket_path(dir, j), rx));
            links.push(Some(tx));
        }
        Ok(Self { index, links })
    }

    /// A session id unique across the workers.
    pub fn session_id(&self, local: u64) -> u64 {
        ((self.index as u64) << 48) | (local & ((1 << 48) - 1))
    }

    fn broadcast(&self, frame: &[u8]) {
        for tx in self.links.iter().flatten() {
            // A link far behind loses this binding: its worker cannot
            // reach the session (logged nowhere: it is a worker that has
            // stopped reading).
            let _ = tx.try_send(frame.to_vec());
        }
    }

    /// Tells the others that `session` bound `full`.
    pub fn bound(&self, session: u64, full: &str) {
        self.broadcast(&frame(
            b'B',
            &[session.to_string().as_bytes(), full.as_bytes()],
        ));
    }

    /// Tells the others that `session` unbound `full`.
    pub fn unbound(&self, session: u64, full: &str) {
        self.broadcast(&frame(
            b'U',
            &[session.to_string().as_bytes(), full.as_bytes()],
        ));
    }

    /// Sends a stanza for the session of `full` to worker `worker`.
    pub fn deliver(
        &self,
        worker: usize,
        full: &str,
        sender: &str,
        el: Element,
    ) -> Result<(), (Refused, Element)> {
        let Some(Some(tx)) = self.links.get(worker) else {
            return Err((Refused::Gone, el));
        };
        let mut xml = Vec::new();
        if el.write_to(&mut xml).is_err() {
            return Err((Refused::Gone, el));
        }
        tx.try_send(frame(b'D', &[full.as_bytes(), sender.as_bytes(), &xml]))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => (Refused::Full, el),
                mpsc::error::TrySendError::Closed(_) => (Refused::Gone, el),
            })
    }
}

/// Writes the frames of `rx` to the worker listening at `path` (connecting
/// when it appears).
async fn write_link(path: PathBuf, mut rx: mpsc::Receiver<Vec<u8>>) {
    let started = std::time::Instant::now();
    let mut stream = loop {
        match UnixStream::connect(&path).await {
            Ok(s) => break s,
            Err(_) if started.elapsed() < CONNECT_FOR => {
                ::tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                eprintln!("xmpp-server-async: link {}: {e}", path.display());
                return;
            }
        }
    };
    while let Some(f) = rx.recv().await {
        if stream.write_all(&f).await.is_err() {
            return;
        }
    }
}

/// Accepts the other workers' links.
async fn accept_links(listener: UnixListener, shared: Arc<std::sync::OnceLock<Arc<Shared>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        ::tokio::spawn(read_link(stream, shared.clone()));
    }
}

/// Applies the frames of one link.
async fn read_link(mut stream: UnixStream, shared: Arc<std::sync::OnceLock<Arc<Shared>>>) {
    let mut len = [0u8; 4];
    let mut body = Vec::new();
    loop {
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return;
        }
        body.resize(n, 0);
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let (Some(frame), Some(shared)) = (parse_frame(&body), shared.get()) else {
            continue;
        };
        apply(shared, frame);
        if body.capacity() > 64 * 1024 {
            body = Vec::new();
        }
    }
}

/// One frame of another worker.
fn apply(shared: &Arc<Shared>, frame: Frame) {
    match frame {
        Frame::Bind { session, full } => {
            let Some(cluster) = &shared.cluster else {
                return;
            };
            let route = Route::Remote {
                session,
                worker: (session >> 48) as usize,
                full: full.as_str().into(),
                cluster: cluster.clone(),
            };
            shared.router.rebind(&full, route);
        }
        Frame::Unbind { session, full } => shared.router.unbind(&full, session),
        Frame::Deliver {
            full,
            sender,
            stanza,
        } => {
            let Ok(el) = stanza.parse::<Element>() else {
                return;
            };
            let refused = match shared.router.mailbox(&full) {
                Some(route @ Route::Local { .. }) => match route.offer(el) {
                    Ok(()) => return,
                    Err(r) => r,
                },
                // Gone meanwhile, or bound again elsewhere: not delivered.
                _ => (Refused::Gone, el),
            };
            let (why, el) = refused;
            if el.attr("type") == Some("error") || el.name() == "presence" {
                return;
            }
            let condition = match why {
                Refused::Full => "resource-constraint",
                Refused::Gone => "service-unavailable",
            };
            let bounce = error_reply(&el, &sender, condition);
            // To the sender, wherever it is (an error is never bounced).
            let _ = shared.router.route("", bounce);
        }
    }
}

/// `--workers N`: starts N workers (this program with `args` and `--worker
/// I/N --peers DIR`), prints `LISTENING` once each is listening, forwards
/// their output, and returns when one of them ends (the others are
/// stopped).
pub fn supervise(n: usize, listen: SocketAddr, args: &[String]) -> ExitCode {
    match supervise_inner(n, listen, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xmpp-server-async: --workers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Kills and reaps the workers left.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn supervise_inner(n: usize, listen: SocketAddr, args: &[String]) -> Result<ExitCode, String> {
    // Port 0: one is picked now, by a socket bound with SO_REUSEPORT and
    // never listening (it receives no connection), held until every
    // worker listens on the same port.
    let reserve = super::reuseport_socket(listen).map_err(|e| format!("{listen}: {e}"))?;
    let addr = reserve.local_addr().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("xmpp-server-async.{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers = Workers(Vec::new());
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<(usize, Option<String>)>();
    for i in 0..n {
        let mut child = std::process::Command::new(&exe)
            .args(args)
            .args(["--listen", &addr.to_string()])
            .args(["--worker", &format!("{i}/{n}")])
            .arg("--peers")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting worker {i}: {e}"))?;
        let out = child.stdout.take().ok_or("no worker stdout")?;
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((i, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((i, None));
        });
        workers.0.push(child);
    }
    drop(lines_tx);
    let mut reserve = Some(reserve);
    let mut listening = vec![None; n];
    let mut out = std::io::stdout();
    while let Ok((i, line)) = lines_rx.recv() {
        let Some(line) = line else {
            // A worker ended: so does the server.
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(ExitCode::FAILURE);
        };
        if listening.iter().any(Option::is_none) {
            if let Some(rest) = line.strip_prefix("LISTENING ") {
                listening[i] = Some(rest.to_owned());
                if listening.iter().all(Option::is_some) {
                    drop(reserve.take());
                    let first = listening[0].as_deref().unwrap_or_default();
                    let tail = first.split_once(' ').map_or("", |(_, t)| t);
                    let pids: Vec<String> = workers.0.iter().map(|c| c.id().to_string()).collect();
                    let _ = writeln!(
                        out,
                        "LISTENING {addr} {tail} workers {n} pids {}",
                        pids.join(",")
                    );
                }
                continue;
            }
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::Bind {
                session: (1 << 48) | 7,
                full: "a@d/r".into(),
            },
            Frame::Unbind {
                session: 3,
                full: "a@d/r".into(),
            },
            Frame::Deliver {
                full: "a@d/r".into(),
                sender: "b@d/s".into(),
                stanza: "<message xmlns='jabber:client'><body>x</body></message>".into(),
            },
        ] {
            let bytes = match &f {
                Frame::Bind { session, full } => {
                    frame(b'B', &[session.to_string().as_bytes(), full.as_bytes()])
                }
                Frame::Unbind { session, full } => {
                    frame(b'U', &[session.to_string().as_bytes(), full.as_bytes()])
                }
                Frame::Deliver {
                    full,
                    sender,
                    stanza,
                } => frame(
                    b'D',
                    &[full.as_bytes(), sender.as_bytes(), stanza.as_bytes()],
                ),
            };
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(parse_frame(&bytes[4..]), Some(f));
        }
        assert_eq!(parse_frame(b"X1\0a"), None);
        assert_eq!(parse_frame(b"Bnot-a-number\0a@d/r"), None);
        assert_eq!(parse_frame(b""), None);
        assert_eq!(parse_worker("1/2"), Ok((1, 2)));
        for bad in ["2/2", "0/0", "1", "a/b", "0/65"] {
            assert!(parse_worker(bad).is_err(), "{bad}");
        }
    }
}
