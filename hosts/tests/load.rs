//! `xmpp-load` against `xmpp-server-async`, both in this process (the
//! server on its own runtime, over loopback TCP, STARTTLS with a
//! certificate made by rcgen, accounts in a fresh SQLite file): the
//! accounts are registered in-band, then the figures the tool reports are
//! checked against what the server counted, and the binary's last line
//! is the `RESULT` line.

use std::sync::atomic::Ordering;

use xmpp_sansio_hosts::load::args::{self, Scenario};
use xmpp_sansio_hosts::load::report::ResultLine;

mod common;

use common::{server, Fixture, DOMAIN};

fn load_args(f: &Fixture, extra: &str) -> args::Args {
    let line = format!(
        "--target {} --domain {DOMAIN} --password load-pw --ca-file {} {extra}",
        f.addr,
        f.dir.join("cert.pem").display()
    );
    args::parse(line.split_whitespace().map(String::from))
        .unwrap()
        .unwrap()
}

fn run(a: args::Args) -> xmpp_sansio_hosts::load::report::Summary {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(xmpp_sansio_hosts::load::run(a)).unwrap()
}

#[test]
fn login_numbers_add_up_with_the_servers_count() {
    let f = server("login", true);
    let s = run(load_args(
        &f,
        "--users 4 --concurrency 8 --duration 60 --max-logins 120 --register",
    ));
    // Registration: four new accounts, in the SQLite file.
    assert_eq!((s.registered, s.existed), (4, 0), "{}", s.table());
    assert!(s.register_failures.is_empty());
    // The budget of attempts, all successful, each one a login the
    // server counted too.
    assert_eq!(s.failures, 0, "{}", s.table());
    assert_eq!(s.logins, 120);
    assert_eq!(f.shared.logins.load(Ordering::Relaxed), 120);
    // The timeline adds up to the totals.
    assert_eq!(s.timeline.iter().map(|t| t.logins).sum::<u64>(), 120);
    assert_eq!(s.timeline.iter().map(|t| t.failures).sum::<u64>(), 0);
    // rate = logins over the login window; the quantiles are ordered.
    let window = s.login_window.as_secs_f64();
    assert!(window > 0.0);
    assert!((s.rate - 120.0 / window).abs() < 1e-6 * s.rate.max(1.0));
    assert!(s.p50_ms > 0.0 && s.p50_ms <= s.p90_ms && s.p90_ms <= s.p99_ms);
    assert!(s.p99_ms <= s.max_ms);
    let r = ResultLine::parse(&s.result_line()).unwrap();
    assert_eq!((r.logins, r.failures), (120, 0));
    assert!((r.rate - s.rate).abs() <= 0.05);
    // Registering again: every account existed.
    let again = run(load_args(
        &f,
        "--users 4 --concurrency 4 --duration 60 --max-logins 4 --register",
    ));
    assert_eq!((again.registered, again.existed), (0, 4));
    assert_eq!(again.logins, 4);
}

#[test]
fn a_wrong_password_is_a_failure_by_condition() {
    let f = server("wrong", false);
    let line = format!(
        "--target {} --domain {DOMAIN} --password nope --tls none --users 2 --concurrency 2 \
         --duration 60 --max-logins 6",
        f.addr
    );
    let a = args::parse(line.split_whitespace().map(String::from))
        .unwrap()
        .unwrap();
    let s = run(a);
    assert_eq!(s.logins, 0);
    assert_eq!(s.failures, 6);
    assert_eq!(
        s.failures_by,
        vec![("sasl not-authorized".to_string(), 6)],
        "{}",
        s.table()
    );
    assert_eq!(f.shared.logins.load(Ordering::Relaxed), 0);
}

#[test]
fn held_sessions_are_all_ready_at_once_and_messages_arrive() {
    let f = server("hold", true);
    let mut a = load_args(&f, "--users 5 --concurrency 40 --duration 3 --register");
    a.scenario = Scenario::LoginHold;
    let s = run(a);
    assert_eq!((s.logins, s.failures), (40, 0), "{}", s.table());
    assert_eq!(s.peak_ready, 40);
    assert!(s.drops_by.is_empty(), "{:?}", s.drops_by);
    // Every session closed at the end.
    assert_eq!(s.timeline.last().map(|t| t.ready), Some(0));

    let mut a = load_args(
        &f,
        "--users 5 --concurrency 10 --duration 3 --message-rate 20",
    );
    a.scenario = Scenario::Messages;
    let s = run(a);
    assert_eq!((s.logins, s.failures), (10, 0), "{}", s.table());
    assert!(s.messages_sent > 100, "{}", s.table());
    // Each message reached its addressee or came back as an error (sent
    // before the addressee was ready); a few may be in flight at the end.
    let back = s.messages_received + s.message_errors;
    assert!(back <= s.messages_sent);
    assert!(back + 20 >= s.messages_sent, "{}", s.table());
    assert!(s.messages_received > 0);
}

#[test]
fn the_binary_ends_with_the_result_line() {
    let f = server("binary", false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmpp-load"))
        .args([
            "--target",
            &f.addr.to_string(),
            "--domain",
            DOMAIN,
            "--users",
            "3",
            "--password",
            "bin-pw",
            "--concurrency",
            "3",
            "--duration",
            "1",
            "--tls",
            "none",
            "--register",
            "--json",
            &f.dir.join("r.json").display().to_string(),
            "--plot",
            &f.dir.join("r.svg").display().to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let r = ResultLine::parse(last).unwrap_or_else(|| panic!("last line: {last:?}"));
    assert!(r.logins > 0 && r.failures == 0, "{stdout}");
    assert_eq!(r.logins, f.shared.logins.load(Ordering::Relaxed));
    // The password never shows.
    assert!(!stdout.contains("bin-pw"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(json["logins"], r.logins);
    assert_eq!(json["result"], last);
    let svg = std::fs::read_to_string(f.dir.join("r.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(last));
}
