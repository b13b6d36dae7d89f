//! `xmpp-server-async`: the example server that scales (tokio, one task
//! per connection, accounts in SQLite); see `xmpp-server-async --help`.
//! The logic is in the hosts crate's `async_server` module.

fn main() -> std::process::ExitCode {
    xmpp_sansio_hosts::async_server::main()
}
