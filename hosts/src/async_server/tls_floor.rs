//! `xmpp-server-async --tls-floor N`: the floor under a login's CPU, N full
//! TLS handshakes with the server's own rustls configuration (the one
//! STARTTLS uses: same certificate, versions, suites, key exchange) and no
//! XMPP, in memory: the server side on one thread, a rustls client on
//! another, the records handed over by channels. Each side's CPU is read
//! from `/proc/thread-self/stat` (utime + stime), so the server's figure is
//! its own alone, as `load_figures.sh` reads the server process's.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};

use crate::server_tls::TlsSetup;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Floor {
    /// Handshakes completed.
    pub handshakes: u64,
    /// CPU of the server side's thread.
    pub server_cpu: Duration,
    /// CPU of the client side's thread.
    pub client_cpu: Duration,
    /// From the first handshake to the last.
    pub wall: Duration,
    /// The protocol version and suite of the last one.
    pub negotiated: String,
}

impl Floor {
    /// The `TLS-FLOOR` line of the tool.
    pub fn line(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / self.handshakes.max(1) as f64;
        format!(
            "TLS-FLOOR handshakes={} server-cpu-per-handshake={:.3}ms client-cpu-per-handshake={:.3}ms wall={:.2}s {}",
            self.handshakes,
            per(self.server_cpu),
            per(self.client_cpu),
            self.wall.as_secs_f64(),
            self.negotiated
        )
    }
}

/// This thread's CPU time so far (`/proc/thread-self/stat`, utime + stime,
/// clock ticks of 10 ms).
fn thread_cpu() -> Result<Duration, String> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")
        .map_err(|e| format!("/proc/thread-self/stat: {e}"))?;
    // The fields after the command (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("/proc/thread-self/stat: no command field")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after ')'.
    Ok(Duration::from_millis((tick(11) + tick(12)) * 10))
}

/// Moves the records `from` has to send into `to`, through a channel.
fn send_records(
    from: &mut dyn FnMut(&mut Vec<u8>) -> std::io::Result<usize>,
    to: &Sender<Vec<u8>>,
) -> Result<(), String> {
    let mut out = Vec::new();
    while from(&mut out).map_err(|e| format!("tls write: {e}"))? > 0 {}
    if !out.is_empty() {
        to.send(out)
            .map_err(|_| "tls floor: the peer thread ended".to_string())?;
    }
    Ok(())
}

/// One side's handshake: feed what comes in until it is done and nothing
/// is left to send.
fn server_side(
    setup: &TlsSetup,
    rx: &Receiver<Vec<u8>>,
    tx: &Sender<Vec<u8>>,
) -> Result<String, String> {
    // The configuration chosen from the client's hello, as a login's.
    let mut acceptor = rustls::server::Acceptor::default();
    let mut conn: ServerConnection = loop {
        let bytes = rx
            .recv()
            .map_err(|_| "tls floor: the client thread ended".to_string())?;
        acceptor
            .read_tls(&mut bytes.as_slice())
            .map_err(|e| format!("tls read: {e}"))?;
        match acceptor.accept() {
            Ok(Some(hello)) => {
                break setup
                    .accept_hello(false, hello)
                    .map_err(|(e, _)| format!("tls server: {e}"))?
            }
            Ok(None) => {}
            Err((e, _)) => return Err(format!("tls server: {e}")),
        }
    };
    send_records(&mut |out| conn.write_tls(out), tx)?;
    while conn.is_handshaking() {
        let bytes = rx
            .recv()
            .map_err(|_| "tls floor: the client thread ended".to_string())?;
        conn.read_tls(&mut bytes.as_slice())
            .map_err(|e| format!("tls read: {e}"))?;
        conn.process_new_packets()
            .map_err(|e| format!("tls server: {e}"))?;
        send_records(&mut |out| conn.write_tls(out), tx)?;
    }
    // The end of this handshake's records (its session tickets came
    // before): the client reads up to here.
    tx.send(Vec::new())
        .map_err(|_| "tls floor: the client thread ended".to_string())?;
    // What a login does next: the channel bindings.
    setup.info(&conn)?;
    Ok(format!(
        "{:?} {:?}",
        conn.protocol_version()
            .unwrap_or(rustls::ProtocolVersion::Unknown(0)),
        conn.negotiated_cipher_suite()
            .map(|s| s.suite())
            .unwrap_or(rustls::CipherSuite::Unknown(0))
    ))
}

fn client_side(
    config: &Arc<rustls::ClientConfig>,
    name: &ServerName<'static>,
    rx: &Receiver<Vec<u8>>,
    tx: &Sender<Vec<u8>>,
) -> Result<(), String> {
    let mut conn = ClientConnection::new(config.clone(), name.clone())
        .map_err(|e| format!("tls client: {e}"))?;
    send_records(&mut |out| conn.write_tls(out), tx)?;
    while conn.is_handshaking() {
        let bytes = rx
            .recv()
            .map_err(|_| "tls floor: the server thread ended".to_string())?;
        conn.read_tls(&mut bytes.as_slice())
            .map_err(|e| format!("tls read: {e}"))?;
        conn.process_new_packets()
            .map_err(|e| format!("tls client: {e}"))?;
        send_records(&mut |out| conn.write_tls(out), tx)?;
    }
    // The server's session tickets, up to its end-of-handshake mark.
    loop {
        let bytes = rx
            .recv()
            .map_err(|_| "tls floor: the server thread ended".to_string())?;
        if bytes.is_empty() {
            return Ok(());
        }
        conn.read_tls(&mut bytes.as_slice())
            .map_err(|e| format!("tls read: {e}"))?;
        conn.process_new_packets()
            .map_err(|e| format!("tls client: {e}"))?;
    }
}

/// `n` handshakes of `setup` (STARTTLS's configuration) with a client
/// trusting `trust` for `domain`.
pub fn run(
    setup: Arc<TlsSetup>,
    trust: &crate::tls::Trust,
    domain: &str,
    n: u64,
) -> Result<Floor, String> {
    // Full handshakes, as xmpp-load's logins: no resumption.
    let mut config = (*crate::tls::client_config(trust, None, true, None)?).clone();
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let name = ServerName::try_from(domain.to_owned()).map_err(|e| format!("{domain}: {e}"))?;
    let (to_server, server_rx) = channel::<Vec<u8>>();
    let (to_client, client_rx) = channel::<Vec<u8>>();
    let started = Instant::now();
    let server = std::thread::spawn(move || -> Result<(Duration, String), String> {
        let c0 = thread_cpu()?;
        let mut negotiated = String::new();
        for _ in 0..n {
            negotiated = server_side(&setup, &server_rx, &to_client)?;
        }
        Ok((thread_cpu()? - c0, negotiated))
    });
    let c0 = thread_cpu()?;
    let mut client_result = Ok(());
    for _ in 0..n {
        client_result = client_side(&config, &name, &client_rx, &to_server);
        if client_result.is_err() {
            break;
        }
    }
    let client_cpu = thread_cpu()? - c0;
    drop(to_server);
    let (server_cpu, negotiated) = server
        .join()
        .map_err(|_| "tls floor: the server thread panicked".to_string())??;
    client_result?;
    Ok(Floor {
        handshakes: n,
        server_cpu,
        client_cpu,
        wall: started.elapsed(),
        negotiated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    #[test]
    fn handshakes_complete_and_are_counted() {
        let ck = rcgen::generate_simple_self_signed(vec!["floor.test".to_string()]).unwrap();
        let cert = CertificateDer::from(ck.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let setup = Arc::new(TlsSetup::new(vec![cert.clone()], key).unwrap());
        let trust = crate::tls::Trust::Certificates(vec![cert]);
        let floor = run(setup.clone(), &trust, "floor.test", 20).unwrap();
        assert_eq!(floor.handshakes, 20);
        assert!(floor.negotiated.contains("TLSv1_3"), "{}", floor.negotiated);
        // The suite a login gets from this rustls client (see
        // `TlsSetup::config_for`).
        assert!(
            floor.negotiated.contains("TLS13_AES_128_GCM_SHA256"),
            "{}",
            floor.negotiated
        );
        assert!(floor.line().starts_with("TLS-FLOOR handshakes=20 "));
        // A client that does not trust the certificate fails the run.
        let other = rcgen::generate_simple_self_signed(vec!["floor.test".to_string()]).unwrap();
        let wrong =
            crate::tls::Trust::Certificates(vec![CertificateDer::from(other.cert.der().to_vec())]);
        assert!(run(setup, &wrong, "floor.test", 2).is_err());
    }
}
