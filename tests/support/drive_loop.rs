use std::error::Error;
use std::io;
use std::time::Instant;

use xmpp_sansio::client::{Client, ClientEvent};
use xmpp_sansio::TlsInfo;

/// What the loop needs from the host's connection.
pub trait Connection {
    /// Writes all of `bytes` (through TLS once it is up).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads into `buf`, waiting until `deadline` at most: `Ok(0)` when the
    /// server closed the connection, an error of kind `TimedOut` at the
    /// deadline.
    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize>;
    /// STARTTLS: runs the TLS handshake on this connection (`pending`:
    /// its first bytes, already received) and tells what TLS it got.
    fn start_tls(&mut self, pending: &[u8]) -> io::Result<TlsInfo>;
}

/// Drives `client` over `conn` until the stream is closed: `Ok` after a
/// clean close, the stream's error otherwise. `on_event` gets every event
/// but the loop's own, and may send stanzas or close.
pub fn drive(
    client: &mut Client,
    conn: &mut impl Connection,
    mut on_event: impl FnMut(&mut Client, ClientEvent),
) -> Result<(), Box<dyn Error>> {
    let (mut out, mut buf, mut failed) = (Vec::new(), vec![0; 16 * 1024], None);
    loop {
        // 1. Send everything queued.
        flush(client, conn, &mut out)?;
        // 2. Act on every event.
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::StartTls { pending } => {
                    let info = conn.start_tls(&pending)?;
                    client.tls_established(Instant::now(), info)?;
                }
                ClientEvent::Error(e) => failed = Some(e), // `Closed` follows
                ClientEvent::Closed => {
                    flush(client, conn, &mut out)?;
                    return failed.map_or(Ok(()), |e| Err(e.into()));
                }
                other => on_event(client, other),
            }
            // Stanzas sent by `on_event` pile up: write them before more.
            if client.output_congested() {
                flush(client, conn, &mut out)?;
            }
        }
        if client.queued_output() > 0 {
            continue; // an event made bytes (TLS restarts the stream)
        }
        // 3. Wait for bytes or the next deadline.
        match conn.read(&mut buf, client.poll_timeout()) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => client.feed(Instant::now(), &buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => client.handle_timeout(Instant::now()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn flush(client: &mut Client, conn: &mut impl Connection, out: &mut Vec<u8>) -> io::Result<()> {
    if client.poll_transmit(out) > 0 {
        conn.write_all(out)?;
        out.clear();
    }
    Ok(())
}
