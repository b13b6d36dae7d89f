//! `xmpp-load --processes N`: the sessions spread over N processes of this
//! tool (one process holds at most its open-file limit of sockets; this
//! machine's hard limit is 20,000). Process k gets its share of
//! `--concurrency`, `--ramp` and `--max-logins` and numbers its sessions
//! from `--first-session` (so resources stay unique); the parent prints
//! each one's summary, then their sum: logins, failures, rates and peak
//! ready sessions added, the latency percentiles the worst process's (a
//! bound on the whole run's, not its exact value), and the `RESULT` line.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};

/// What one process's output says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Part {
    /// From the `RESULT` line.
    pub logins: u64,
    /// From the `RESULT` line.
    pub failures: u64,
    /// Logins a second.
    pub rate: f64,
    /// Milliseconds.
    pub p50: f64,
    /// Milliseconds.
    pub p99: f64,
    /// The table's `peak ready sessions`.
    pub peak_ready: u64,
}

/// Reads a process's summary; `None` without a `RESULT` line.
pub fn parse_part(out: &str) -> Option<Part> {
    let mut part = Part::default();
    let mut result = false;
    for line in out.lines() {
        if let Some(v) = line.trim().strip_prefix("peak ready sessions") {
            part.peak_ready = v.trim().parse().ok()?;
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=')?;
                let v = v.trim_end_matches("/s");
                match k {
                    "logins" => part.logins = v.parse().ok()?,
                    "failures" => part.failures = v.parse().ok()?,
                    "rate" => part.rate = v.parse().ok()?,
                    "p50" => part.p50 = v.parse().ok()?,
                    "p99" => part.p99 = v.parse().ok()?,
                    _ => {}
                }
            }
            result = true;
        }
    }
    result.then_some(part)
}

/// The parts added up (percentiles: the worst part's).
pub fn merge(parts: &[Part]) -> Part {
    let mut all = Part::default();
    for p in parts {
        all.logins += p.logins;
        all.failures += p.failures;
        all.rate += p.rate;
        all.peak_ready += p.peak_ready;
        all.p50 = all.p50.max(p.p50);
        all.p99 = all.p99.max(p.p99);
    }
    all
}

/// Share `k` of `total` split in `n`.
fn share(total: u64, n: u64, k: u64) -> u64 {
    total / n + u64::from(k < total % n)
}

/// Runs `n` processes of this program with `raw` (the command line without
/// `--processes`) and the shares of `args`; prints their summaries and
/// the sum.
pub fn spread(args: &super::args::Args, raw: &[String]) -> ExitCode {
    let n = args.processes;
    // The flags each process gets its own value of.
    let own = [
        "--processes",
        "--concurrency",
        "--ramp",
        "--max-logins",
        "--first-session",
    ];
    let mut base = Vec::new();
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        if own.contains(&a.as_str()) {
            it.next();
        } else {
            base.push(a.clone());
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xmpp-load: --processes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut children = Vec::new();
    let mut first = 0;
    for k in 0..n {
        let concurrency = share(args.concurrency, n, k);
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(&base)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--first-session", &(args.first_session + first).to_string()])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        if args.ramp > 0.0 {
            cmd.args(["--ramp", &(args.ramp / n as f64).to_string()]);
        }
        if let Some(m) = args.max_logins {
            cmd.args(["--max-logins", &share(m, n, k).to_string()]);
        }
        first += concurrency;
        match cmd.spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                eprintln!("xmpp-load: --processes: starting process {k}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut parts = Vec::new();
    let mut ok = true;
    for (k, mut c) in children.into_iter().enumerate() {
        let mut out = String::new();
        if let Some(o) = c.stdout.take() {
            for line in BufReader::new(o).lines().map_while(Result::ok) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        let status = c.wait().map(|s| s.success()).unwrap_or(false);
        ok &= status;
        println!("process {k}:");
        for line in out.lines().filter(|l| !l.starts_with("RESULT ")) {
            println!("{line}");
        }
        match parse_part(&out) {
            Some(p) => parts.push(p),
            None => {
                eprintln!("xmpp-load: process {k} gave no RESULT line");
                ok = false;
            }
        }
    }
    let all = merge(&parts);
    println!(
        "all {n} processes: logins {} failures {} rate {:.1}/s peak ready sessions {} \
         (p50/p99: the worst process's)",
        all.logins, all.failures, all.rate, all.peak_ready
    );
    println!("  peak ready sessions    {}", all.peak_ready);
    println!(
        "RESULT logins={} failures={} rate={:.1}/s p50={:.1} p99={:.1}",
        all.logins, all.failures, all.rate, all.p50, all.p99
    );
    if ok && all.failures == 0 && all.logins > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_and_add_up() {
        let a = "  logins                 10\n  peak ready sessions    10000\n\
                 RESULT logins=10000 failures=2 rate=400.5/s p50=2.0 p99=16.4\n";
        let b = "  peak ready sessions    9990\n\
                 RESULT logins=9990 failures=0 rate=399.5/s p50=3.0 p99=12.0\n";
        let (a, b) = (parse_part(a).unwrap(), parse_part(b).unwrap());
        assert_eq!(a.peak_ready, 10000);
        assert_eq!(a.failures, 2);
        let all = merge(&[a, b]);
        assert_eq!(all.logins, 19990);
        assert_eq!(all.failures, 2);
        assert_eq!(all.peak_ready, 19990);
        assert!((all.rate - 800.0).abs() < 1e-9);
        assert_eq!((all.p50, all.p99), (3.0, 16.4));
        assert_eq!(parse_part("no result here\n"), None);
        assert_eq!(parse_part("RESULT logins=x\n"), None);
        assert_eq!(
            (0..3).map(|k| share(10, 3, k)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
    }
}
