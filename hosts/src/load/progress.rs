//! The progress bar of a run: on a terminal only (stderr), with indicatif;
//! nothing at all when stderr is a file or a pipe (CI, scripts).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::scenario::Run;

/// A running progress bar; [`Progress::finish`] clears it.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    ticker: ::tokio::task::JoinHandle<()>,
}

/// The bar's line for the counters now.
pub fn line(logins: u64, failures: u64, ready: u64, seconds: f64) -> String {
    let rate = if seconds > 0.0 {
        logins as f64 / seconds
    } else {
        0.0
    };
    format!("logins {logins} ({rate:.0}/s)  failures {failures}  ready {ready}")
}

impl Progress {
    /// Starts a bar over the run's duration when stderr is a terminal.
    pub fn start(run: &Arc<Run>) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let duration = run.args().duration;
        let bar = ProgressBar::with_draw_target(
            Some(duration.as_millis() as u64),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let (b, run) = (bar.clone(), run.clone());
        let ticker = ::tokio::spawn(async move {
            let mut tick = ::tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let (logins, failures, ready) = {
                    let s = run.stats();
                    (s.login.count(), s.failures.total(), s.ready)
                };
                let t = run.now();
                b.set_position((t.as_millis() as u64).min(duration.as_millis() as u64));
                b.set_message(line(logins, failures, ready, t.as_secs_f64()));
            }
        });
        Some(Self { bar, ticker })
    }

    /// Stops and clears the bar.
    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_shows_the_rate() {
        assert_eq!(
            super::line(100, 2, 7, 4.0),
            "logins 100 (25/s)  failures 2  ready 7"
        );
        assert_eq!(
            super::line(0, 0, 0, 0.0),
            "logins 0 (0/s)  failures 0  ready 0"
        );
    }
}
