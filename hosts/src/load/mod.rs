//! `xmpp-load`: a load generator for XMPP servers on the sans-IO
//! [`Client`](xmpp_sansio::client::Client), thousands of sessions from
//! one process on a multi-threaded tokio runtime (one worker per core).
//!
//! One file per concern: [`args`] (the command line), [`scenario`] (the
//! sessions), [`stats`] (histogram, timeline, failures), [`report`]
//! (summary table, JSON, the `RESULT` line), [`plot`] (SVG) and
//! [`progress`] (the bar on a terminal).

pub mod args;
pub mod plot;
pub mod processes;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod stats;

use report::Summary;
use scenario::Run;
use std::process::ExitCode;

/// Runs `args` to its end and returns its summary (the caller prints it).
pub async fn run(args: args::Args) -> Result<Summary, String> {
    // The registrations first, on their own clock: not part of the run.
    let registered = if args.register {
        let reg = Run::new(args.clone())?;
        scenario::register_all(&reg).await;
        let s = reg.stats();
        Some((s.registered, s.existed, s.register_failures.clone()))
    } else {
        None
    };
    let run = Run::new(args)?;
    if let Some(r) = registered {
        let mut s = run.stats();
        (s.registered, s.existed, s.register_failures) = r;
    }
    let progress = progress::Progress::start(&run);
    scenario::run_scenario(&run).await;
    if let Some(p) = progress {
        p.finish();
    }
    let a = run.args();
    let stats = run.stats();
    Ok(Summary::new(
        &stats,
        a.scenario.as_str(),
        &a.target,
        a.tls.as_str(),
        a.concurrency,
        run.now(),
    ))
}

/// The whole tool: arguments, runtime, run, outputs; the exit status.
pub fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xmpp-load: {e}");
            return ExitCode::from(2);
        }
    };
    if args.processes > 1 {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        return processes::spread(&args, &raw);
    }
    let limit = crate::tool::host::raise_fd_limit();
    if limit < args.concurrency + 64 {
        eprintln!(
            "xmpp-load: warning: the open-file limit is {limit}, below --concurrency {}",
            args.concurrency
        );
    }
    let runtime = match crate::tool::host::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xmpp-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (json, plot) = (args.json.clone(), args.plot.clone());
    let summary = match runtime.block_on(run(args)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xmpp-load: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let mut ok = summary.failures == 0 && summary.logins > 0;
    if let Some(f) = json {
        if let Err(e) = std::fs::write(&f, summary.json()) {
            eprintln!("xmpp-load: --json {f}: {e}");
            ok = false;
        }
    }
    if let Some(f) = plot {
        if let Err(e) = std::fs::write(&f, plot::svg(&summary)) {
            eprintln!("xmpp-load: --plot {f}: {e}");
            ok = false;
        }
    }
    print!("{}", summary.table());
    println!("{}", summary.result_line());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
