//! What a load run counts: a latency histogram of fixed size, the run
//! second by second, and failures by condition. Every structure here is
//! bounded, whatever the run's length or the number of sessions.

use std::collections::BTreeMap;
use std::time::Duration;

/// Values below this are counted exactly (one bucket each).
const LINEAR: u64 = 128;
/// Buckets per power of two above [`LINEAR`]: a relative error of at most
/// 1/64 (1.6%).
const SUB: u64 = 64;
/// `log2(SUB)`.
const SUB_BITS: u32 = 6;
/// `log2(LINEAR)`.
const LINEAR_BITS: u32 = 7;
/// Enough buckets for any `u64`.
const BUCKETS: usize = (LINEAR + (64 - LINEAR_BITS as u64) * SUB) as usize;

/// A log-linear histogram of microseconds: 3,776 counters, whatever is
/// recorded, with quantiles within 1.6% of the true value (exact below
/// 128 µs), plus the exact count, sum, minimum and maximum.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max())
            .finish_non_exhaustive()
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= LINEAR_BITS
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(e - LINEAR_BITS) * SUB + sub) as usize
}

/// The highest value of bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + u64::from(LINEAR_BITS);
    let sub = (i - LINEAR) % SUB;
    let low = (1u64 << e) | (sub << (e - u64::from(SUB_BITS)));
    low.saturating_add((1u64 << (e - u64::from(SUB_BITS))) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value, in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.counts[bucket(us)] += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1): the smallest value that at least
    /// `q` of the values do not exceed, to the bucket's precision (never
    /// above the maximum). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

/// Failures by condition (`sasl not-authorized`, `connect refused`...),
/// at most [`Failures::KINDS`] distinct ones: the rest are counted under
/// `other`.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    by: BTreeMap<String, u64>,
    total: u64,
}

impl Failures {
    /// Distinct conditions kept.
    pub const KINDS: usize = 32;

    /// Counts one failure of `condition`.
    pub fn add(&mut self, condition: &str) {
        self.total += 1;
        if let Some(n) = self.by.get_mut(condition) {
            *n += 1;
        } else if self.by.len() < Self::KINDS {
            self.by.insert(condition.to_owned(), 1);
        } else {
            *self.by.entry("other".into()).or_default() += 1;
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The conditions, most frequent first (then by name).
    pub fn sorted(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.by.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

/// One second of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    /// Logins completed in this second.
    pub logins: u64,
    /// Login attempts that failed in this second.
    pub failures: u64,
    /// Sum of the login latencies of this second, in microseconds.
    pub latency_sum_us: u64,
    /// The largest login latency of this second, in microseconds.
    pub latency_max_us: u64,
    /// Sessions ready at the end of this second.
    pub ready: u64,
}

impl Second {
    /// The mean login latency of this second in milliseconds (0 without
    /// logins).
    pub fn mean_ms(&self) -> f64 {
        if self.logins == 0 {
            0.0
        } else {
            self.latency_sum_us as f64 / self.logins as f64 / 1000.0
        }
    }
}

/// The run second by second; at most [`Timeline::SECONDS`] seconds (later
/// events count in the last one).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    seconds: Vec<Second>,
}

impl Timeline {
    /// The longest timeline kept: a day.
    pub const SECONDS: usize = 86_400;

    fn at(&mut self, t: Duration) -> &mut Second {
        let i = (t.as_secs() as usize).min(Self::SECONDS - 1);
        if self.seconds.len() <= i {
            let ready = self.seconds.last().map_or(0, |s| s.ready);
            self.seconds.resize(
                i + 1,
                Second {
                    ready,
                    ..Second::default()
                },
            );
        }
        &mut self.seconds[i]
    }

    /// A login at `t` (since the start) that took `latency`.
    pub fn login(&mut self, t: Duration, latency: Duration, ready: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let s = self.at(t);
        s.logins += 1;
        s.latency_sum_us = s.latency_sum_us.saturating_add(us);
        s.latency_max_us = s.latency_max_us.max(us);
        s.ready = ready;
    }

    /// A failed login attempt at `t`.
    pub fn failure(&mut self, t: Duration) {
        self.at(t).failures += 1;
    }

    /// The number of ready sessions changed at `t`.
    pub fn ready(&mut self, t: Duration, ready: u64) {
        self.at(t).ready = ready;
    }

    /// The seconds so far.
    pub fn seconds(&self) -> &[Second] {
        &self.seconds
    }
}

/// Everything one run counts.
#[derive(Debug, Default)]
pub struct Stats {
    /// Login latencies: from the start of the TCP connect to the bound
    /// resource (`Ready`).
    pub login: Histogram,
    /// Login attempts that did not reach `Ready`, by condition.
    pub failures: Failures,
    /// Ready sessions that failed later (while held or sending), by
    /// condition.
    pub drops: Failures,
    /// Second by second.
    pub timeline: Timeline,
    /// Sessions ready now.
    pub ready: u64,
    /// The most sessions ready at once.
    pub peak_ready: u64,
    /// When the first attempt started (since the start of the run).
    pub first_attempt: Option<Duration>,
    /// When the last login completed (since the start of the run).
    pub last_login: Option<Duration>,
    /// Accounts registered in-band (`--register`).
    pub registered: u64,
    /// Accounts that existed already (a registration answered 409).
    pub existed: u64,
    /// Registrations that failed, by condition.
    pub register_failures: Failures,
    /// Messages sent (scenario `messages`).
    pub messages_sent: u64,
    /// Messages received, with their latency from send to receipt.
    pub message_latency: Histogram,
    /// Messages answered with an error (the addressee was not there).
    pub message_errors: u64,
}

impl Stats {
    /// A login attempt starts at `t`.
    pub fn attempt(&mut self, t: Duration) {
        self.first_attempt.get_or_insert(t);
    }

    /// A login completed at `t`, `latency` after its attempt started.
    pub fn login(&mut self, t: Duration, latency: Duration) {
        self.login.record(latency);
        self.ready += 1;
        self.peak_ready = self.peak_ready.max(self.ready);
        self.last_login = Some(self.last_login.map_or(t, |l| l.max(t)));
        self.timeline.login(t, latency, self.ready);
    }

    /// A ready session ended at `t` (closed, or `dropped` with its
    /// condition).
    pub fn session_end(&mut self, t: Duration, dropped: Option<&str>) {
        self.ready = self.ready.saturating_sub(1);
        self.timeline.ready(t, self.ready);
        if let Some(c) = dropped {
            self.drops.add(c);
        }
    }

    /// A login attempt failed at `t` with `condition`.
    pub fn failure(&mut self, t: Duration, condition: &str) {
        self.failures.add(condition);
        self.timeline.failure(t);
    }

    /// Login attempts so far: logins and failures.
    pub fn attempts(&self) -> u64 {
        self.login.count() + self.failures.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_128_and_within_1_6_percent_above() {
        for v in 0..LINEAR {
            assert_eq!(bucket_high(bucket(v)), v);
        }
        for v in [
            128u64,
            129,
            1000,
            4095,
            4096,
            1_000_000,
            123_456_789,
            u64::MAX / 3,
        ] {
            let high = bucket_high(bucket(v));
            assert!(high >= v, "{v}: {high}");
            assert!((high - v) as f64 <= v as f64 / 64.0, "{v}: {high}");
        }
        assert!(bucket(u64::MAX) < BUCKETS);
        assert_eq!(bucket_high(bucket(u64::MAX)), u64::MAX);
        // Buckets are in order: a larger value never lands in a lower bucket.
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(997) {
            assert!(bucket(v) >= last);
            last = bucket(v);
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record_us(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!((h.min(), h.max()), (1, 10_000));
        assert!((h.mean() - 5000.5).abs() < 1e-9);
        for (q, want) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile(q) as f64;
            assert!(got >= want && got <= want * 1.016, "q{q}: {got}");
        }
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(f64::NAN), 10_000);
    }

    #[test]
    fn small_counts_and_empty() {
        let h = Histogram::new();
        assert_eq!(
            (h.quantile(0.5), h.min(), h.max(), h.mean()),
            (0, 0, 0, 0.0)
        );
        let mut h = Histogram::new();
        h.record(Duration::from_millis(250));
        // One value: every quantile is that value (the bucket's high end
        // clamped to the maximum).
        assert_eq!(h.quantile(0.01), 250_000);
        assert_eq!(h.quantile(0.99), 250_000);
        let mut h = Histogram::new();
        for v in [10, 20, 30, 1_000_000] {
            h.record_us(v);
        }
        assert_eq!(h.quantile(0.5), 20);
        assert_eq!(h.quantile(0.75), 30);
        assert_eq!(h.quantile(0.99), 1_000_000);
    }

    #[test]
    fn merge_adds_up() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        (1..=100).for_each(|v| a.record_us(v));
        (101..=200).for_each(|v| b.record_us(v * 1000));
        a.merge(&b);
        assert_eq!(a.count(), 200);
        assert_eq!((a.min(), a.max()), (1, 200_000));
        assert_eq!(a.quantile(0.5), 100);
    }

    #[test]
    fn failures_are_bounded() {
        let mut f = Failures::default();
        for i in 0..100 {
            f.add(&format!("kind-{i}"));
        }
        f.add("kind-0");
        assert_eq!(f.total(), 101);
        let sorted = f.sorted();
        assert_eq!(sorted.len(), Failures::KINDS + 1);
        assert_eq!(sorted[0], ("other", 100 - Failures::KINDS as u64));
        assert_eq!(sorted[1], ("kind-0", 2));
        assert_eq!(sorted.iter().map(|(_, n)| n).sum::<u64>(), 101);
    }

    #[test]
    fn timeline_counts_by_second_and_is_bounded() {
        let mut s = Stats::default();
        s.attempt(Duration::from_millis(5));
        s.login(Duration::from_millis(100), Duration::from_millis(40));
        s.login(Duration::from_millis(900), Duration::from_millis(60));
        s.failure(Duration::from_millis(1500), "sasl not-authorized");
        s.session_end(Duration::from_millis(2500), None);
        s.login(Duration::from_secs(1_000_000), Duration::from_millis(1));
        let t = s.timeline.seconds();
        assert_eq!(t.len(), Timeline::SECONDS);
        assert_eq!(t[0].logins, 2);
        assert_eq!(t[0].latency_max_us, 60_000);
        assert!((t[0].mean_ms() - 50.0).abs() < 1e-9);
        assert_eq!((t[0].ready, t[1].ready, t[2].ready), (2, 2, 1));
        assert_eq!(t[1].failures, 1);
        assert_eq!(t[Timeline::SECONDS - 1].logins, 1);
        assert_eq!(s.attempts(), 4);
        assert_eq!(s.peak_ready, 2);
        assert_eq!(s.first_attempt, Some(Duration::from_millis(5)));
        assert_eq!(s.last_login, Some(Duration::from_secs(1_000_000)));
    }
}
