//! Reads an XMPP stream from standard input and prints the events the
//! codec sees, one per line, restarting after `<proceed/>` and SASL
//! `<success/>` as a peer would.
//!
//! ```text
//! printf "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><presence/>" \
//!   | cargo run --example stream_events
//! ```

use std::io::Read;

use xmpp_sansio::ns;
use xmpp_sansio::xml::{Limits, StreamEvent, StreamReader, StreamWriter};

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("reading stdin: {e}");
        std::process::exit(2);
    }
    let mut reader = StreamReader::new(Limits::default());
    let writer = StreamWriter::new(ns::JABBER_CLIENT);
    let mut rest = &input[..];
    loop {
        let offset = input.len() - rest.len();
        match reader.read(&mut rest) {
            Ok(Some(StreamEvent::Element(el))) => {
                let mut out = Vec::new();
                let _ = writer.write_element(&mut out, &el);
                println!("@{offset} element {}", String::from_utf8_lossy(&out));
                if el.is("proceed", ns::TLS) || el.is("success", ns::SASL) {
                    println!("@{} restart", input.len() - rest.len());
                    reader.reset();
                }
            }
            Ok(Some(ev)) => println!("@{offset} {ev:?}"),
            Ok(None) => {
                println!("@{} end of input", input.len());
                return;
            }
            Err(e) => {
                println!(
                    "@{offset} error: {e} -> stream error <{}/>",
                    e.condition().as_str()
                );
                std::process::exit(1);
            }
        }
    }
}
