//! The client tool's stream management mode (`--sm`): enable with
//! resumption, send `--message` to itself, `--hangup` (drop the TCP
//! connection without closing the stream), and resume: in the same
//! process on a new connection, or from `--sm-state-file` in a new one.
//!
//! Lines: `STANZA <xml>` for every stanza received, `UNDELIVERED <xml>`
//! for every stanza handed back, `OK <jid> sm=<id>` after enabling (`none`
//! without resumption), `OK <jid> resumed h=<n>` after resuming.

use std::path::Path;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{Client, ClientEvent};
use xmpp_sansio::sm::SmState;
use xmpp_sansio::xml::StreamWriter;
use xmpp_sansio::Framing;

use crate::blocking::{Driver, Wake};
use crate::tool::client_args::{error_line, Args, TlsArg};
use crate::tool::host::{domain_of, message_to, note, noted_starttls, wire_log};
use crate::tool::self_message::note_event;
use crate::{tls, DriverError};

/// How long the tool waits, once ready, for more stanzas and for its
/// own to be acknowledged before it closes.
const SETTLE: Duration = Duration::from_millis(1500);

/// How one connection ended.
enum End {
    /// Closed: the outcome line.
    Closed(String),
    /// `--hangup`: the outcome line, and the state to resume.
    HungUp(String, Option<SmState>),
}

/// `--sm`: one or two connections (`--hangup` without a state file
/// resumes on a second one at once).
pub fn run(args: &Args) -> Result<String, String> {
    let file = args.sm_state_file.as_deref();
    let mut state = match file {
        Some(f) if f.exists() => {
            let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let st = SmState::from_bytes(&bytes).map_err(|e| format!("{}: {e}", f.display()))?;
            note(&format!(
                "resuming {} from {} (h={}, {} unacknowledged)",
                st.id(),
                f.display(),
                st.handled(),
                st.unacked().len()
            ));
            Some(st)
        }
        _ => None,
    };
    let mut first = true;
    loop {
        // The message goes out once, on the first connection; a resumed
        // one sends again only what was not acknowledged.
        match connection(args, state.take(), first)? {
            End::Closed(line) => return Ok(line),
            End::HungUp(line, st) => {
                note("hung up without closing the stream");
                if file.is_some() || !first {
                    return Ok(line);
                }
                println!("OK {line}");
                state = st;
                first = false;
            }
        }
    }
}

fn save(file: Option<&Path>, client: &Client) -> Result<(), String> {
    let (Some(f), Some(st)) = (file, client.sm_state()) else {
        return Ok(());
    };
    let bytes = st.to_bytes().map_err(|e| e.to_string())?;
    let tmp = f.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, f))
        .map_err(|e| format!("{}: {e}", f.display()))
}

fn xml(el: &Element) -> String {
    let mut buf = Vec::new();
    let _ = StreamWriter::with_framing(xmpp_sansio::ns::JABBER_CLIENT, Framing::Tcp)
        .write_element(&mut buf, el);
    String::from_utf8_lossy(&buf).into_owned()
}

/// One connection: log in (resuming `state`), then the script.
fn connection(args: &Args, state: Option<SmState>, first: bool) -> Result<End, String> {
    let hangup = first && args.hangup;
    let domain = domain_of(&args.jid).to_owned();
    let started = Instant::now();
    let dialer = args.dialer()?;
    let (conn, tls) = dialer.blocking(started + args.timeout, true)?;
    let tls_mode = args.tls_mode(tls);
    let mut client = args.client(tls_mode.0, tls_mode.1)?;
    if let Some(st) = state {
        client = client.resume_session(st);
    }
    let mut driver =
        Driver::new(client, conn).with_wire_log(wire_log(args.transcript, |l| println!("{l}")));
    if args.tls == TlsArg::StartTls {
        let upgrade = tls::blocking_upgrade(
            args.tls_config(None)?,
            &domain,
            args.binding,
            args.require_ems(),
        );
        driver = driver.with_tls(noted_starttls(upgrade, note));
    }
    let file = args.sm_state_file.as_deref();
    let deadline = started + args.timeout;
    let (mut sm_id, mut line, mut failed) = (None::<String>, None::<String>, None::<String>);
    let mut settle: Option<Instant> = None;
    loop {
        let until = settle.map_or(deadline, |s| s.min(deadline));
        let wake = match driver.next(Some(until)) {
            Ok(w) => w,
            Err(DriverError::PeerClosed) => {
                return Err(failed.unwrap_or_else(|| DriverError::PeerClosed.to_string()))
            }
            Err(e) => return Err(e.to_string()),
        };
        let ev = match wake {
            Wake::Event(ev) => ev,
            Wake::Deadline | Wake::Interrupted => {
                let now = Instant::now();
                let acked = driver
                    .machine()
                    .sm_state()
                    .is_none_or(|s| s.unacked().is_empty());
                if settle.is_some_and(|s| s <= now) && (acked || now >= deadline) {
                    settle = None;
                    driver.close();
                } else if now >= deadline && line.is_none() {
                    driver.hang_up();
                    return Err("timeout".into());
                } else if settle.is_some_and(|s| s <= now) {
                    settle = Some(now + SETTLE);
                    driver.machine_mut().request_ack();
                }
                continue;
            }
            Wake::Over => break,
        };
        // `--fast-token-file`: the token issued, counted, refused.
        if crate::tool::fast_token_file::on_event(args.fast_token_file.as_deref(), &ev)? {
            continue;
        }
        let mut ready = None;
        match ev {
            ClientEvent::StreamManagementEnabled { id, location, max } => {
                note(&format!(
                    "stream management on: resumption {}{}{}",
                    if id.is_some() { "granted" } else { "refused" },
                    max.map(|m| format!(", max {m}s")).unwrap_or_default(),
                    location
                        .map(|l| format!(", location {l}"))
                        .unwrap_or_default()
                ));
                sm_id = id;
            }
            ClientEvent::StreamManagementFailed { condition } => note(&format!(
                "stream management refused: {}",
                condition.as_deref().unwrap_or("-")
            )),
            ClientEvent::Ready { jid } => {
                ready = Some(format!("{jid} sm={}", sm_id.as_deref().unwrap_or("none")));
            }
            ClientEvent::Resumed { jid, h } => ready = Some(format!("{jid} resumed h={h}")),
            ClientEvent::ResumeFailed { condition } => note(&format!(
                "resumption failed: {}",
                condition
                    .as_deref()
                    .unwrap_or("stream management not offered")
            )),
            ClientEvent::Acked(v) => {
                note(&format!("{} acknowledged", v.len()));
                save(file, driver.machine())?;
            }
            ClientEvent::Undelivered(v) => {
                for kept in &v {
                    println!("UNDELIVERED {}", String::from_utf8_lossy(kept.as_bytes()));
                }
            }
            ClientEvent::Stanza(el) => {
                println!("STANZA {}", xml(&el));
                // The handled count moved: a resumption must say so.
                save(file, driver.machine())?;
                if settle.is_some() {
                    settle = Some(Instant::now() + SETTLE);
                }
            }
            ClientEvent::Error(e) => failed = Some(error_line(&e)),
            ClientEvent::Closed => {}
            other => note_event(&other),
        }
        if let Some(l) = ready {
            save(file, driver.machine())?;
            let jid = driver.machine().jid().map(|j| j.to_string());
            if let (Some(text), Some(jid), true) = (&args.message, &jid, first) {
                let id = format!("sm-{}", std::process::id());
                driver
                    .send(&message_to(jid, &id, text))
                    .map_err(|e| e.to_string())?;
                save(file, driver.machine())?;
            }
            if hangup {
                let st = driver.machine().sm_state();
                driver.hang_up();
                return Ok(End::HungUp(l, st));
            }
            line = Some(l);
            settle = Some(Instant::now() + args.linger.unwrap_or(SETTLE));
        }
    }
    driver.hang_up();
    match (failed, line) {
        (Some(e), _) => Err(e),
        (None, Some(l)) => Ok(End::Closed(l)),
        (None, None) => Err("closed before the session was ready".into()),
    }
}
