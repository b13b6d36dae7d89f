//! `xmpp-load`: thousands of concurrent XMPP client sessions from one
//! process, on the sans-IO `Client` (see `xmpp-load --help`; the logic is
//! in the hosts crate's `load` module).

fn main() -> std::process::ExitCode {
    xmpp_sansio_hosts::load::main()
}
