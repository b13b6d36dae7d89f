//! The SVG plot of a run, written by hand (no plotting library): three
//! panels over the run's seconds, logins and failures per second, ready
//! sessions, and the mean and maximum login latency of each second.

use std::fmt::Write as _;

use super::report::Summary;
use super::stats::Second;

const WIDTH: f64 = 900.0;
const PANEL: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const GAP: f64 = 45.0;

/// One line of a panel: its colour, legend and one value per second.
struct Series {
    color: &'static str,
    label: &'static str,
    values: Vec<f64>,
}

/// A round step for an axis from 0 to `max` in about 5 ticks.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn panel(
    svg: &mut String,
    index: usize,
    title: &str,
    unit: &str,
    series: &[Series],
    seconds: usize,
) {
    let y0 = TOP + index as f64 * (PANEL + GAP);
    let plot_w = WIDTH - LEFT - RIGHT;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let step = tick_step(max);
    let top = (max / step).ceil().max(1.0) * step;
    let x = |i: f64| LEFT + plot_w * i / (seconds.max(1) as f64);
    let y = |v: f64| y0 + PANEL - PANEL * (v / top).clamp(0.0, 1.0);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
        y0 - 8.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{y0:.1}" width="{plot_w:.1}" height="{PANEL}" fill="none" stroke="#888"/>"##
    );
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let yy = y(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            label(v)
        );
        v += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{:.1}" font-size="11" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        y0 + PANEL / 2.0,
        y0 + PANEL / 2.0,
        escape(unit)
    );
    // Time ticks.
    let tstep = tick_step(seconds as f64).max(1.0);
    let mut t = 0.0;
    while t <= seconds as f64 + 0.01 {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x(t),
            y0 + PANEL + 14.0,
            label(t)
        );
        t += tstep;
    }
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y(*v)))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                s.color,
                points.join(" ")
            );
        }
        let lx = LEFT + plot_w - 160.0;
        let ly = y0 + 16.0 + 16.0 * k as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}" font-size="11">{}</text>"#,
            ly - 4.0,
            lx + 20.0,
            ly - 4.0,
            s.color,
            lx + 26.0,
            escape(s.label)
        );
    }
}

/// The SVG document of `summary`'s timeline.
pub fn svg(summary: &Summary) -> String {
    let t: &[Second] = &summary.timeline;
    let seconds = t.len().max(1);
    let height = TOP + 3.0 * (PANEL + GAP) + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="15">{}</text>"#,
        escape(&format!(
            "xmpp-load {} against {} ({}, {} at once): {}",
            summary.scenario,
            summary.target,
            summary.tls,
            summary.concurrency,
            summary.result_line()
        ))
    );
    let col = |f: fn(&Second) -> f64| t.iter().map(f).collect::<Vec<f64>>();
    panel(
        &mut svg,
        0,
        "logins per second",
        "per second",
        &[
            Series {
                color: "#1f77b4",
                label: "logins",
                values: col(|s| s.logins as f64),
            },
            Series {
                color: "#d62728",
                label: "failures",
                values: col(|s| s.failures as f64),
            },
        ],
        seconds,
    );
    panel(
        &mut svg,
        1,
        "ready sessions",
        "sessions",
        &[Series {
            color: "#2ca02c",
            label: "ready",
            values: col(|s| s.ready as f64),
        }],
        seconds,
    );
    panel(
        &mut svg,
        2,
        "login latency (seconds since start below)",
        "ms",
        &[
            Series {
                color: "#ff7f0e",
                label: "mean",
                values: col(Second::mean_ms),
            },
            Series {
                color: "#9467bd",
                label: "max",
                values: col(|s| s.latency_max_us as f64 / 1000.0),
            },
        ],
        seconds,
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::Stats;
    use std::time::Duration;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0.0), 1.0);
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(47.0), 10.0);
        assert_eq!(tick_step(2300.0), 500.0);
        assert_eq!(label(12_000.0), "12k");
        assert_eq!(label(0.5), "0.5");
    }

    #[test]
    fn svg_has_a_line_per_series_and_escapes_text() {
        let mut s = Stats::default();
        s.attempt(Duration::ZERO);
        for i in 0..30 {
            s.login(Duration::from_millis(100 * i), Duration::from_millis(5 + i));
        }
        s.failure(Duration::from_millis(1200), "x");
        let summary = Summary::new(
            &s,
            "login",
            "<host>&:1",
            "starttls",
            4,
            Duration::from_secs(3),
        );
        let svg = svg(&summary);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(svg.contains("&lt;host&gt;&amp;:1"));
        assert!(!svg.contains("<host>"));
        assert!(svg.contains("RESULT logins=30 failures=1"));
        // Well-formed: every element parses as XML.
        let _: minidom::Element = svg.parse().unwrap();
    }

    #[test]
    fn an_empty_run_still_plots() {
        let summary = Summary::new(&Stats::default(), "login", "h:1", "none", 1, Duration::ZERO);
        let svg = svg(&summary);
        assert!(svg.contains("</svg>"));
        assert!(!svg.contains("NaN"));
    }
}
