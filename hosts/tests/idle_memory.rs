//! What an idle session costs `xmpp-server-async`: the server in this
//! process, its allocations counted (the binary's counting allocator), the
//! clients in another (the `xmpp-load` binary, `login-hold`), so every
//! byte counted is the server's. The bound is the budget: an idle
//! STARTTLS session was 37 KiB of RSS (a 16 KiB read buffer per
//! connection, an 11 KiB task, 32-slot channel blocks of inline items),
//! then about 14.5 KiB of live heap (rustls's buffered connection with its
//! 4 KiB buffer and expanded keys, a task holding room for the machine it
//! returns); about 6.5 KiB in this debug build (TLS after the handshake
//! by `compact_tls`, holding only the traffic secrets), then about 3 KiB
//! (the server's negotiation state dropped once ready, the driver a
//! hand-written future instead of an `async fn` around a `select!`). Any
//! of those coming back fails this test.

#[path = "../src/bin/shared/heap_counting.rs"]
mod heap_counting;

#[global_allocator]
static ALLOCATOR: heap_counting::Counting = heap_counting::Counting;

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{server, DOMAIN};

/// Sessions held.
const SESSIONS: u64 = 200;
/// The budget per idle session, bytes of live heap (debug build: 3,066
/// measured).
const BUDGET: u64 = 3584;

fn xmpp_load(f: &common::Fixture, extra: &str) -> std::process::Child {
    let line = format!(
        "--target {} --domain {DOMAIN} --password load-pw --ca-file {} --users 20 {extra}",
        f.addr,
        f.dir.join("cert.pem").display()
    );
    std::process::Command::new(env!("CARGO_BIN_EXE_xmpp-load"))
        .args(line.split_whitespace())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `done`, at most `secs` seconds.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn an_idle_tls_session_stays_within_its_heap_budget() {
    let f = server("idle-memory", true);
    let status = xmpp_load(
        &f,
        "--concurrency 20 --duration 60 --max-logins 20 --register",
    )
    .wait()
    .unwrap();
    assert!(status.success(), "registration and 20 logins");
    let idle = |n: u64| f.shared.connections.load(Ordering::Relaxed) == n;
    assert!(wait_for(10, || idle(0)));
    std::thread::sleep(Duration::from_millis(300));
    let before = heap_counting::live();
    let logins0 = f.shared.logins.load(Ordering::Relaxed);
    let mut hold = xmpp_load(
        &f,
        &format!("--concurrency {SESSIONS} --duration 60 --ramp 400 --scenario login-hold"),
    );
    let all_ready = wait_for(60, || {
        f.shared.logins.load(Ordering::Relaxed) - logins0 == SESSIONS && idle(SESSIONS)
    });
    // Settled: the last answers written, the drivers parked.
    std::thread::sleep(Duration::from_millis(500));
    let held = heap_counting::live();
    let _ = hold.kill();
    let _ = hold.wait();
    assert!(all_ready, "{SESSIONS} sessions logged in and held");
    let per = (held.saturating_sub(before)) / SESSIONS;
    eprintln!("live heap per idle session: {per} bytes");
    // Counted at all (a session's machine alone is over 1 KiB).
    assert!(
        per > 1024,
        "{per} bytes per session: the allocator counts nothing?"
    );
    assert!(
        per <= BUDGET,
        "an idle session holds {per} bytes of heap, over the budget of {BUDGET}"
    );
    // The sessions end, their memory is given back (within a tenth).
    assert!(wait_for(20, || idle(0)));
    std::thread::sleep(Duration::from_millis(300));
    let after = heap_counting::live();
    assert!(
        after < before + (held - before) / 10,
        "after the sessions: {after} bytes live, {before} before"
    );
}
