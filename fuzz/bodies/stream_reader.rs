//! Fuzz body for `StreamReader`, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/stream_reader.rs`) and the seed-corpus test
//! (`tests/fuzz_stream_reader.rs`).
//!
//! The whole input is XML fed to a reader with small limits; its first
//! bytes also choose a chunking pattern, so the seeds stay plain XML. A
//! broken invariant is a panic (`assert!`):
//!
//! - `read` never panics and never loops without end;
//! - it only ever consumes a prefix of the slice it was given (the slice
//!   it leaves is a suffix of the one it got), and `Ok(None)` means all of
//!   it was consumed;
//! - once it returned an error, every later `read` returns the same error,
//!   whatever it is given;
//! - fed in one piece, one byte at a time, or in the derived chunks, it
//!   yields the same events at the same input offsets, and the same error;
//! - every `StreamEvent::Element` serialises with
//!   `StreamWriter::write_element` and reads back, inside a fresh stream
//!   header, to an equal element.

use xmpp_sansio::xml::{Limits, ReadError, StreamEvent, StreamReader, StreamWriter};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_element_bytes: 4096,
    max_depth: 16,
    max_attributes: 16,
    max_token_bytes: 1024,
    max_element_heap: 4 * 4096,
};

/// Generous limits for reading back what the writer made of an element:
/// escaping and generated prefix declarations make it larger than what was
/// read.
const READBACK_LIMITS: Limits = Limits {
    max_element_bytes: 1 << 20,
    max_depth: 64,
    max_attributes: 256,
    max_token_bytes: 64 * 1024,
    max_element_heap: 64 << 20,
};

/// What one way of feeding the input produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Each event with the number of input bytes consumed when it came out.
    events: Vec<(StreamEvent, usize)>,
    error: Option<ReadError>,
}

/// Calls `read` once, checking that only a prefix of `buf` was consumed
/// and that `Ok(None)` consumed everything. Returns the bytes consumed.
fn read_checked(
    reader: &mut StreamReader,
    buf: &mut &[u8],
) -> (Result<Option<StreamEvent>, ReadError>, usize) {
    let before: &[u8] = buf;
    let res = reader.read(buf);
    assert!(buf.len() <= before.len(), "read grew its input");
    let consumed = before.len() - buf.len();
    // (An empty slice is a suffix wherever it points.)
    assert!(
        buf.is_empty() || buf.as_ptr() as usize == before.as_ptr() as usize + consumed,
        "read left a slice that is not a suffix of its input"
    );
    if let Ok(None) = res {
        assert!(buf.is_empty(), "Ok(None) with {} bytes left", buf.len());
    }
    (res, consumed)
}

/// Feeds `data` in chunks of the given sizes (the last one as long as what
/// remains), reading until the reader needs more or fails.
fn feed(data: &[u8], mut sizes: impl Iterator<Item = usize>) -> Outcome {
    let mut reader = StreamReader::new(LIMITS);
    let mut events = Vec::new();
    let mut offset = 0;
    let mut rest = data;
    // Each event consumes input, except one that rxml queued behind
    // another (`<stream:stream/>`: the header, then the close).
    let max_events = 2 * data.len() + 2;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (mut chunk, tail) = rest.split_at(n);
        rest = tail;
        loop {
            let (res, consumed) = read_checked(&mut reader, &mut chunk);
            offset += consumed;
            assert!(offset <= data.len());
            match res {
                Ok(Some(ev)) => {
                    check_event(&reader, &ev);
                    events.push((ev, offset));
                    assert!(events.len() <= max_events, "read loops");
                }
                Ok(None) => break,
                Err(e) => {
                    check_sticky(&mut reader, &e, chunk, rest);
                    return Outcome {
                        events,
                        error: Some(e),
                    };
                }
            }
        }
    }
    // Nothing is left behind once the input has been consumed.
    let (res, consumed) = read_checked(&mut reader, &mut &b""[..]);
    assert_eq!(consumed, 0);
    assert!(matches!(res, Ok(None)), "event out of nothing: {res:?}");
    Outcome {
        events,
        error: None,
    }
}

/// What the reader says about itself agrees with the event it returned.
fn check_event(reader: &StreamReader, ev: &StreamEvent) {
    match ev {
        StreamEvent::Header(h) => assert_eq!(reader.header_is_pre_1_0(), Some(h.is_pre_1_0())),
        StreamEvent::Element(_) | StreamEvent::StreamError(_) => {
            assert!(reader.at_boundary());
            assert!(reader.header_is_pre_1_0().is_some());
        }
        StreamEvent::Closed => assert!(reader.is_closed()),
    }
}

/// After an error, `read` returns that same error whatever it is given.
fn check_sticky(reader: &mut StreamReader, err: &ReadError, chunk: &[u8], rest: &[u8]) {
    let again: [&[u8]; 4] = [chunk, rest, b"", b" <presence/>"];
    for input in again {
        let (res, _) = read_checked(reader, &mut &input[..]);
        assert_eq!(res.as_ref(), Err(err), "error not sticky");
    }
}

/// Writes the element of `ev` as a top-level element of a stream with
/// `content_ns` and reads it back in a fresh stream: it must come back
/// equal. (The element is reached through the event so that the fuzz crate
/// needs no minidom dependency of its own.)
fn check_round_trip(content_ns: &str, ev: &StreamEvent) {
    let StreamEvent::Element(el) = ev else {
        return;
    };
    let writer = StreamWriter::new(content_ns);
    let mut bytes = Vec::new();
    writer
        .write_header(&mut bytes, &Default::default())
        .unwrap_or_else(|e| panic!("an empty header does not serialise: {e:?}"));
    let header_len = bytes.len();
    writer
        .write_element(&mut bytes, el)
        .unwrap_or_else(|e| panic!("read element does not serialise: {e:?}\n{el:?}"));
    let text = String::from_utf8_lossy(&bytes[header_len..]).into_owned();

    let mut reader = StreamReader::new(READBACK_LIMITS);
    let mut input = &bytes[..];
    let header = reader.read(&mut input);
    assert!(
        matches!(header, Ok(Some(StreamEvent::Header(_)))),
        "writer's header read as {header:?}"
    );
    let back = reader.read(&mut input);
    match back {
        Ok(Some(StreamEvent::Element(back))) => {
            assert!(
                back == *el,
                "round trip changed the element\nwritten: {text}\nbefore: {el:?}\nafter: {back:?}"
            );
        }
        other => panic!("round trip of {text} read as {other:?}\nbefore: {el:?}"),
    }
    assert!(input.is_empty(), "round trip left {} bytes", input.len());
}

/// Chunk sizes (1..=32) cycling over the first bytes of the input.
fn derived_sizes(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let pattern = &data[..data.len().min(8)];
    pattern.iter().map(|&b| 1 + usize::from(b % 32)).cycle()
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    let whole = feed(data, std::iter::empty());
    let bytewise = feed(data, std::iter::repeat(1));
    assert_eq!(whole, bytewise, "one piece vs one byte at a time");
    if !data.is_empty() {
        let chunked = feed(data, derived_sizes(data));
        assert_eq!(whole, chunked, "one piece vs derived chunks");
    }

    let mut content_ns = None;
    for (ev, _) in &whole.events {
        match ev {
            StreamEvent::Header(h) => content_ns = h.content_ns.clone(),
            StreamEvent::Element(_) => {
                let ns = content_ns.as_deref().unwrap_or("jabber:client");
                check_round_trip(ns, ev);
            }
            StreamEvent::StreamError(_) | StreamEvent::Closed => {}
        }
    }
}
