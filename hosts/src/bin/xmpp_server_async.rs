//! `xmpp-server-async`: the example server that scales (tokio, one task
//! per connection, accounts in SQLite); see `xmpp-server-async --help`.
//! The logic is in the hosts crate's `async_server` module.

#[path = "shared/heap_counting.rs"]
mod heap_counting;

/// Counted, for `--stats` (its `heap=` figure).
#[global_allocator]
static ALLOCATOR: heap_counting::Counting = heap_counting::Counting;

fn main() -> std::process::ExitCode {
    xmpp_sansio_hosts::async_server::main_with_heap(heap_counting::live)
}
