//! What a load run reports: the summary table, the JSON report and the
//! `RESULT` line, all from one [`Summary`].

use std::fmt::Write as _;
use std::time::Duration;

use super::stats::{Second, Stats};

/// The run's figures, derived once from its [`Stats`].
#[derive(Debug, Clone)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// The target, `HOST:PORT`.
    pub target: String,
    /// `starttls`, `direct` or `none`.
    pub tls: String,
    /// Sessions at once.
    pub concurrency: u64,
    /// The whole run, from start to the last session's end.
    pub elapsed: Duration,
    /// The login window: from the first attempt's start to the last
    /// login's end (the divisor of `rate`).
    pub login_window: Duration,
    /// Successful logins (bound resources).
    pub logins: u64,
    /// Login attempts that failed.
    pub failures: u64,
    /// Logins per second over the login window.
    pub rate: f64,
    /// Login latency, milliseconds: p50, p90, p99, max, mean.
    pub p50_ms: f64,
    /// p90.
    pub p90_ms: f64,
    /// p99.
    pub p99_ms: f64,
    /// The slowest login.
    pub max_ms: f64,
    /// The mean login.
    pub mean_ms: f64,
    /// Failed attempts by condition, most frequent first.
    pub failures_by: Vec<(String, u64)>,
    /// Ready sessions that failed later, by condition.
    pub drops_by: Vec<(String, u64)>,
    /// The most sessions ready at once.
    pub peak_ready: u64,
    /// In-band registrations: done, already there, failed by condition.
    pub registered: u64,
    /// Registrations answered 409 (the account existed).
    pub existed: u64,
    /// Failed registrations by condition.
    pub register_failures: Vec<(String, u64)>,
    /// Messages sent, received, answered with an error.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages answered with an error.
    pub message_errors: u64,
    /// Message latency (send to receipt), milliseconds: p50 and p99.
    pub message_p50_ms: f64,
    /// p99.
    pub message_p99_ms: f64,
    /// The run second by second.
    pub timeline: Vec<Second>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn owned(v: Vec<(&str, u64)>) -> Vec<(String, u64)> {
    v.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
}

impl Summary {
    /// The summary of `stats` for a run of `elapsed`.
    pub fn new(
        stats: &Stats,
        scenario: &str,
        target: &str,
        tls: &str,
        concurrency: u64,
        elapsed: Duration,
    ) -> Self {
        let logins = stats.login.count();
        let login_window = match (stats.first_attempt, stats.last_login) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => Duration::ZERO,
        };
        let rate = if login_window.is_zero() {
            0.0
        } else {
            logins as f64 / login_window.as_secs_f64()
        };
        let h = &stats.login;
        Self {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            tls: tls.to_owned(),
            concurrency,
            elapsed,
            login_window,
            logins,
            failures: stats.failures.total(),
            rate,
            p50_ms: ms(h.quantile(0.5)),
            p90_ms: ms(h.quantile(0.9)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
            failures_by: owned(stats.failures.sorted()),
            drops_by: owned(stats.drops.sorted()),
            peak_ready: stats.peak_ready,
            registered: stats.registered,
            existed: stats.existed,
            register_failures: owned(stats.register_failures.sorted()),
            messages_sent: stats.messages_sent,
            messages_received: stats.message_latency.count(),
            message_errors: stats.message_errors,
            message_p50_ms: ms(stats.message_latency.quantile(0.5)),
            message_p99_ms: ms(stats.message_latency.quantile(0.99)),
            timeline: stats.timeline.seconds().to_vec(),
        }
    }

    /// The last line of every run:
    /// `RESULT logins=<n> failures=<n> rate=<x>/s p50=<ms> p99=<ms>`.
    pub fn result_line(&self) -> String {
        format!(
            "RESULT logins={} failures={} rate={:.1}/s p50={:.1} p99={:.1}",
            self.logins, self.failures, self.rate, self.p50_ms, self.p99_ms
        )
    }

    /// The human summary table (several lines, no `RESULT` line).
    pub fn table(&self) -> String {
        let mut t = String::new();
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<22} {v}");
        };
        let _ = writeln!(
            t,
            "xmpp-load: {} against {} ({}), {} at once, {:.1} s",
            self.scenario,
            self.target,
            self.tls,
            self.concurrency,
            self.elapsed.as_secs_f64()
        );
        if self.registered + self.existed + self.register_failures.len() as u64 > 0 {
            row(
                &mut t,
                "registrations",
                format!("{} new, {} existed", self.registered, self.existed),
            );
            for (c, n) in &self.register_failures {
                row(&mut t, "  failed", format!("{n} {c}"));
            }
        }
        row(&mut t, "logins", self.logins.to_string());
        row(
            &mut t,
            "logins/s",
            format!(
                "{:.1} (over {:.1} s)",
                self.rate,
                self.login_window.as_secs_f64()
            ),
        );
        row(
            &mut t,
            "login latency (ms)",
            format!(
                "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
                self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.mean_ms
            ),
        );
        row(&mut t, "peak ready sessions", self.peak_ready.to_string());
        row(&mut t, "failures", self.failures.to_string());
        for (c, n) in &self.failures_by {
            row(&mut t, "", format!("{n:>8}  {c}"));
        }
        if !self.drops_by.is_empty() {
            row(
                &mut t,
                "dropped after login",
                self.drops_by
                    .iter()
                    .map(|(_, n)| n)
                    .sum::<u64>()
                    .to_string(),
            );
            for (c, n) in &self.drops_by {
                row(&mut t, "", format!("{n:>8}  {c}"));
            }
        }
        if self.messages_sent > 0 {
            row(
                &mut t,
                "messages",
                format!(
                    "{} sent, {} received, {} errors; latency p50 {:.1} ms, p99 {:.1} ms",
                    self.messages_sent,
                    self.messages_received,
                    self.message_errors,
                    self.message_p50_ms,
                    self.message_p99_ms
                ),
            );
        }
        t
    }

    /// The JSON report: every figure of the summary and the timeline.
    pub fn json(&self) -> String {
        let mut j = String::from("{\n");
        let field = |j: &mut String, k: &str, v: String| {
            let _ = writeln!(j, "  {}: {v},", json_string(k));
        };
        field(&mut j, "scenario", json_string(&self.scenario));
        field(&mut j, "target", json_string(&self.target));
        field(&mut j, "tls", json_string(&self.tls));
        field(&mut j, "concurrency", self.concurrency.to_string());
        field(&mut j, "elapsed_s", num(self.elapsed.as_secs_f64()));
        field(
            &mut j,
            "login_window_s",
            num(self.login_window.as_secs_f64()),
        );
        field(&mut j, "logins", self.logins.to_string());
        field(&mut j, "failures", self.failures.to_string());
        field(&mut j, "rate_per_s", num(self.rate));
        field(
            &mut j,
            "latency_ms",
            format!(
                "{{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}, \"mean\": {}}}",
                num(self.p50_ms),
                num(self.p90_ms),
                num(self.p99_ms),
                num(self.max_ms),
                num(self.mean_ms)
            ),
        );
        field(&mut j, "failures_by_condition", counts(&self.failures_by));
        field(&mut j, "dropped_by_condition", counts(&self.drops_by));
        field(&mut j, "peak_ready", self.peak_ready.to_string());
        field(
            &mut j,
            "registrations",
            format!(
                "{{\"registered\": {}, \"existed\": {}, \"failed\": {}}}",
                self.registered,
                self.existed,
                counts(&self.register_failures)
            ),
        );
        field(
            &mut j,
            "messages",
            format!(
                "{{\"sent\": {}, \"received\": {}, \"errors\": {}, \"latency_ms\": {{\"p50\": {}, \"p99\": {}}}}}",
                self.messages_sent,
                self.messages_received,
                self.message_errors,
                num(self.message_p50_ms),
                num(self.message_p99_ms)
            ),
        );
        j.push_str("  \"timeline\": [");
        for (i, s) in self.timeline.iter().enumerate() {
            let _ = write!(
                j,
                "{}\n    {{\"second\": {i}, \"logins\": {}, \"failures\": {}, \"mean_ms\": {}, \"max_ms\": {}, \"ready\": {}}}",
                if i == 0 { "" } else { "," },
                s.logins,
                s.failures,
                num(s.mean_ms()),
                num(ms(s.latency_max_us)),
                s.ready
            );
        }
        j.push_str(if self.timeline.is_empty() {
            "],\n"
        } else {
            "\n  ],\n"
        });
        let _ = writeln!(j, "  \"result\": {}", json_string(&self.result_line()));
        j.push_str("}\n");
        j
    }
}

/// A finite number for JSON (NaN and infinities, which JSON has not, are 0).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "0".into()
    }
}

fn counts(v: &[(String, u64)]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|(k, n)| format!("{}: {n}", json_string(k)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// `s` as a JSON string, quoted and escaped.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The figures of a `RESULT` line, read back (for scripts and tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultLine {
    /// `logins=`.
    pub logins: u64,
    /// `failures=`.
    pub failures: u64,
    /// `rate=` (per second).
    pub rate: f64,
    /// `p50=` (ms).
    pub p50: f64,
    /// `p99=` (ms).
    pub p99: f64,
}

impl ResultLine {
    /// Reads `RESULT logins=<n> failures=<n> rate=<x>/s p50=<ms> p99=<ms>`;
    /// `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let mut it = line.trim_end().split(' ');
        if it.next()? != "RESULT" {
            return None;
        }
        let mut value = |key: &str| it.next()?.strip_prefix(key)?.strip_prefix('=');
        let logins = value("logins")?.parse().ok()?;
        let failures = value("failures")?.parse().ok()?;
        let rate = value("rate")?.strip_suffix("/s")?.parse().ok()?;
        let p50 = value("p50")?.parse().ok()?;
        let p99 = value("p99")?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            logins,
            failures,
            rate,
            p50,
            p99,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        let mut s = Stats::default();
        s.attempt(Duration::ZERO);
        for i in 1..=100u64 {
            s.login(Duration::from_millis(20 * i), Duration::from_millis(i));
        }
        s.failure(Duration::from_millis(500), "sasl not-authorized");
        s.failure(Duration::from_millis(600), "connect \"refused\"\n");
        s.session_end(Duration::from_secs(3), Some("closed-by-peer"));
        s.messages_sent = 7;
        Summary::new(
            &s,
            "login",
            "127.0.0.1:5222",
            "starttls",
            10,
            Duration::from_secs(3),
        )
    }

    #[test]
    fn result_line_adds_up() {
        let s = sample();
        assert_eq!(s.logins, 100);
        assert_eq!(s.failures, 2);
        // 100 logins over the 2 s between the first attempt and the last login.
        assert_eq!(s.login_window, Duration::from_secs(2));
        assert!((s.rate - 50.0).abs() < 1e-9);
        // Quantiles within the histogram's 1.6%.
        assert!(s.p50_ms >= 50.0 && s.p50_ms <= 50.0 * 1.016, "{}", s.p50_ms);
        assert!(s.p99_ms >= 99.0 && s.p99_ms <= 99.0 * 1.016, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 100.0);
        let line = s.result_line();
        assert_eq!(
            line,
            format!(
                "RESULT logins=100 failures=2 rate=50.0/s p50={:.1} p99={:.1}",
                s.p50_ms, s.p99_ms
            )
        );
        let r = ResultLine::parse(&line).unwrap();
        assert_eq!((r.logins, r.failures, r.rate), (100, 2, 50.0));
        assert!((r.p50 - s.p50_ms).abs() < 0.05 && (r.p99 - s.p99_ms).abs() < 0.05);
        assert_eq!(ResultLine::parse("RESULT logins=1"), None);
        assert_eq!(ResultLine::parse(&format!("{line} extra=1")), None);
        assert_eq!(
            ResultLine::parse("xRESULT logins=1 failures=0 rate=1/s p50=1 p99=1"),
            None
        );
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let s = Summary::new(&Stats::default(), "login", "h:1", "none", 1, Duration::ZERO);
        assert_eq!(
            s.result_line(),
            "RESULT logins=0 failures=0 rate=0.0/s p50=0.0 p99=0.0"
        );
        let j = s.json();
        assert!(j.contains("\"timeline\": [],"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["logins"], 0);
    }

    #[test]
    fn json_is_valid_and_carries_every_figure() {
        let s = sample();
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["logins"], 100);
        assert_eq!(v["failures"], 2);
        assert_eq!(v["failures_by_condition"]["sasl not-authorized"], 1);
        assert_eq!(v["failures_by_condition"]["connect \"refused\"\n"], 1);
        assert_eq!(v["dropped_by_condition"]["closed-by-peer"], 1);
        assert_eq!(v["latency_ms"]["max"], 100.0);
        assert_eq!(v["messages"]["sent"], 7);
        let timeline = v["timeline"].as_array().unwrap();
        assert_eq!(timeline.len(), 4);
        let total: u64 = timeline.iter().map(|s| s["logins"].as_u64().unwrap()).sum();
        assert_eq!(total, 100);
        assert_eq!(v["result"], s.result_line());
    }

    #[test]
    fn table_lists_the_failures_by_condition() {
        let t = sample().table();
        assert!(t.contains("logins/s"), "{t}");
        assert!(t.contains("max 100.0"), "{t}");
        assert!(t.contains("1  sasl not-authorized"), "{t}");
        assert!(t.contains("dropped after login"), "{t}");
        assert!(!t.contains("RESULT"));
    }
}
