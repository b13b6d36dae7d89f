//! Throughput of the stream codec on a realistic client-to-server stream.
//!
//! Group `read` (same input, same 4 KiB chunking, same run):
//! - `rxml_raw_tokenize`: rxml's `RawParser` alone, the floor;
//! - `rxml_raw_plus_minidom_treebuilder`: `RawParser` + minidom's
//!   `TreeBuilder`, extracting the top-level elements the way tokio-xmpp
//!   does (the baseline the reader is measured against);
//! - `stream_reader`: [`StreamReader`] producing [`StreamEvent`]s.
//!
//! Group `write`: [`StreamWriter::write_element`] against minidom's own
//! `Element::write_to`, over the elements the reader extracted.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 2 --measurement-time 8`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Parse, RawEvent, RawParser};
use xmpp_sansio::xml::{Limits, StreamEvent, StreamReader, StreamWriter};

/// Bytes handed to the parsers per call, as a socket read would.
const CHUNK: usize = 4096;
/// Minimum size of the generated stream.
const MIN_STREAM_BYTES: usize = 1 << 20;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' \
    from='juliet@capulet.lit' version='1.0' xml:lang='en'>";

/// A tiny deterministic generator (Knuth's MMIX LCG); good enough to vary
/// the stanza mix, and the same stream on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64)]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Message body fragments: ASCII, Latin-1, CJK, Cyrillic, emoji, and the
/// escapes a chat client really sends (already escaped: this is wire text).
const PHRASES: &[&str] = &[
    "O Romeo, Romeo, wherefore art thou Romeo?",
    "Ça va ? Très bien, merci — à demain !",
    "Did you see the build? x &lt; y &amp;&amp; y &gt; z holds now.",
    "明日の会議は十時からです。よろしくお願いします。",
    "Привет! Как дела? Всё хорошо.",
    "🌹🌙 see you at the orchard 🍎",
    "Tom &amp; Jerry's \"quotes\" and 'apostrophes' survive.",
    "https://example.org/path?a=1&amp;b=2&amp;c=%20",
    "Grüße aus Köln, straße 5 — Übermorgen?",
    "ok",
    "lol",
    "Can you review &lt;stream:features/&gt; handling before Friday?",
    "مرحبا، كيف حالك؟",
    "Ελληνικά: καλημέρα κόσμε",
];

const CONTACTS: &[&str] = &[
    "romeo@montague.lit",
    "nurse@capulet.lit",
    "benvolio@montague.lit",
    "mercutio@example.org",
    "tybalt@capulet.lit",
    "friar.laurence@verona.lit",
    "room@conference.capulet.lit",
];

const RESOURCES: &[&str] = &[
    "orchard",
    "balcony",
    "gajim.X7Q2",
    "Conversations.k3Zp",
    "mobile",
];

const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/muc",
    "http://jabber.org/protocol/nick+notify",
    "jabber:iq:last",
    "jabber:iq:version",
    "urn:xmpp:avatar:metadata+notify",
    "urn:xmpp:message-correct:0",
    "urn:xmpp:ping",
    "urn:xmpp:receipts",
    "urn:xmpp:time",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:sid:0",
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:file-transfer:5",
];

fn message(r: &mut Lcg, out: &mut String) {
    let to = r.pick(CONTACTS);
    let id = r.uuid();
    let n = 1 + r.below(4);
    let body: Vec<&str> = (0..n).map(|_| r.pick(PHRASES)).collect();
    let body = body.join(" ");
    out.push_str(&format!(
        "<message to='{to}' type='chat' id='{id}' xml:lang='en'><body>{body}</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/>"
    ));
    if r.below(3) == 0 {
        out.push_str(
            "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>",
        );
    }
    let sid = r.uuid();
    out.push_str(&format!(
        "<stanza-id xmlns='urn:xmpp:sid:0' id='{sid}' by='juliet@capulet.lit'/>\
         <origin-id xmlns='urn:xmpp:sid:0' id='{id}'/></message>"
    ));
}

fn chat_state(r: &mut Lcg, out: &mut String) {
    let to = r.pick(CONTACTS);
    let state = r.pick(&["composing", "paused", "inactive", "gone"]);
    let id = r.hex(12);
    out.push_str(&format!(
        "<message to='{to}' type='chat' id='{id}'>\
         <{state} xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ));
}

fn presence(r: &mut Lcg, out: &mut String) {
    let id = r.hex(10);
    let show = r.pick(&["away", "chat", "dnd", "xa"]);
    let status = r.pick(PHRASES);
    let prio = r.below(50);
    let ver = r.hex(28);
    let photo = r.hex(40);
    out.push_str(&format!(
        "<presence id='{id}'><show>{show}</show><status>{status}</status>\
         <priority>{prio}</priority>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
         node='https://gajim.org' ver='{ver}='/>\
         <x xmlns='vcard-temp:x:update'><photo>{photo}</photo></x></presence>"
    ));
}

fn roster_set(r: &mut Lcg, out: &mut String) {
    let id = r.uuid();
    let jid = r.pick(CONTACTS);
    let name = r.pick(&[
        "Romeo",
        "Nurse",
        "Benvolio",
        "Mercutio",
        "Frère Laurent",
        "ティボルト",
    ]);
    let group = r.pick(&["Friends", "Family &amp; Co", "Montagues", "Capulets"]);
    out.push_str(&format!(
        "<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>\
         <item jid='{jid}' name='{name}' subscription='both'><group>{group}</group></item>\
         </query></iq>"
    ));
}

fn disco_info(r: &mut Lcg, out: &mut String) {
    let id = r.hex(16);
    let to = r.pick(CONTACTS);
    let res = r.pick(RESOURCES);
    let ver = r.hex(28);
    out.push_str(&format!(
        "<iq type='result' id='{id}' to='{to}/{res}'>\
         <query xmlns='http://jabber.org/protocol/disco#info' node='https://gajim.org#{ver}='>\
         <identity category='client' type='pc' name='Gajim'/>\
         <identity category='client' type='pc' name='Gajim' xml:lang='fr'/>"
    ));
    for f in FEATURES {
        out.push_str(&format!("<feature var='{f}'/>"));
    }
    out.push_str("</query></iq>");
}

fn pubsub_publish(r: &mut Lcg, out: &mut String) {
    let id = r.uuid();
    let item = r.hex(40);
    let bytes = 1000 + r.below(50_000);
    out.push_str(&format!(
        "<iq type='set' id='{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='urn:xmpp:avatar:metadata'><item id='{item}'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>\
         <info bytes='{bytes}' id='{item}' height='64' width='64' type='image/png'/>\
         </metadata></item></publish>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pubsub#access_model'><value>presence</value></field>\
         </x></publish-options></pubsub></iq>"
    ));
}

fn pubsub_items(r: &mut Lcg, out: &mut String) {
    let id = r.hex(12);
    let to = r.pick(CONTACTS);
    out.push_str(&format!(
        "<iq type='get' id='{id}' to='{to}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:microblog:0' max_items='10'/></pubsub></iq>"
    ));
}

fn ping(r: &mut Lcg, out: &mut String) {
    let id = r.hex(8);
    out.push_str(&format!(
        "<iq type='get' id='{id}' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
}

/// The whole stream: header, then a deterministic stanza mix with
/// whitespace keepalives, at least [`MIN_STREAM_BYTES`] long, not closed.
fn build_stream() -> Vec<u8> {
    let mut r = Lcg(0x5eed_cafe_f00d);
    let mut out = String::with_capacity(MIN_STREAM_BYTES + 4096);
    out.push_str(HEADER);
    while out.len() < MIN_STREAM_BYTES {
        match r.below(100) {
            0..=39 => message(&mut r, &mut out),
            40..=49 => chat_state(&mut r, &mut out),
            50..=71 => presence(&mut r, &mut out),
            72..=79 => roster_set(&mut r, &mut out),
            80..=87 => disco_info(&mut r, &mut out),
            88..=92 => pubsub_publish(&mut r, &mut out),
            93..=95 => pubsub_items(&mut r, &mut out),
            _ => ping(&mut r, &mut out),
        }
        match r.below(12) {
            0 => out.push(' '),
            1 => out.push('\n'),
            2 => out.push_str("\r\n"),
            _ => {}
        }
    }
    out.into_bytes()
}

/// (a) Tokenising only. Returns the number of events.
fn raw_tokenize(input: &[u8]) -> usize {
    let mut parser = RawParser::new();
    let mut events = 0;
    for chunk in input.chunks(CHUNK) {
        let mut buf = chunk;
        loop {
            match parser.parse(&mut buf, false) {
                Ok(Some(ev)) => {
                    black_box(ev);
                    events += 1;
                }
                Err(EndOrError::NeedMoreData) => break,
                Ok(None) => unreachable!("not at eof"),
                Err(EndOrError::Error(e)) => panic!("rxml: {e}"),
            }
        }
    }
    events
}

/// (b) `RawParser` + minidom `TreeBuilder`, tokio-xmpp style: every event
/// to the builder, and after each top-level element's foot take it out of
/// the stream root. `f` sees each top-level element.
fn raw_treebuilder(input: &[u8], mut f: impl FnMut(Element)) {
    let mut parser = RawParser::new();
    let mut tb = TreeBuilder::new();
    for chunk in input.chunks(CHUNK) {
        let mut buf = chunk;
        loop {
            match parser.parse(&mut buf, false) {
                Ok(Some(ev)) => {
                    let foot = matches!(ev, RawEvent::ElementFoot(_));
                    tb.process_event(ev).expect("minidom");
                    if foot && tb.depth() == 1 {
                        if let Some(el) = tb.unshift_child() {
                            f(el);
                        }
                    }
                }
                Err(EndOrError::NeedMoreData) => break,
                Ok(None) => unreachable!("not at eof"),
                Err(EndOrError::Error(e)) => panic!("rxml: {e}"),
            }
        }
    }
}

/// (c) The crate's reader. `f` sees each top-level element.
fn stream_reader(input: &[u8], mut f: impl FnMut(Element)) {
    let mut reader = StreamReader::new(Limits::default());
    for chunk in input.chunks(CHUNK) {
        let mut buf = chunk;
        while let Some(ev) = reader.read(&mut buf).expect("reader") {
            match ev {
                StreamEvent::Element(el) => f(el),
                other => {
                    black_box(other);
                }
            }
        }
    }
}

fn read(c: &mut Criterion) {
    let input = build_stream();

    // Fairness: (b) and (c) extract the same elements.
    let mut tb_elements = Vec::new();
    raw_treebuilder(&input, |el| tb_elements.push(el));
    let mut sr_elements = Vec::new();
    stream_reader(&input, |el| sr_elements.push(el));
    assert!(tb_elements.len() > 1000);
    assert_eq!(tb_elements.len(), sr_elements.len());
    assert!(
        tb_elements == sr_elements,
        "reader and TreeBuilder disagree"
    );
    assert!(raw_tokenize(&input) > tb_elements.len());
    eprintln!(
        "codec/read: {} bytes, {} top-level elements, chunks of {CHUNK} bytes",
        input.len(),
        tb_elements.len()
    );

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("rxml_raw_tokenize", |b| {
        b.iter(|| black_box(raw_tokenize(black_box(&input))))
    });
    g.bench_function("rxml_raw_plus_minidom_treebuilder", |b| {
        b.iter(|| {
            let mut n = 0usize;
            raw_treebuilder(black_box(&input), |el| {
                black_box(el);
                n += 1;
            });
            n
        })
    });
    g.bench_function("stream_reader", |b| {
        b.iter(|| {
            let mut n = 0usize;
            stream_reader(black_box(&input), |el| {
                black_box(el);
                n += 1;
            });
            n
        })
    });
    g.finish();
}

fn write(c: &mut Criterion) {
    let input = build_stream();
    let mut elements = Vec::new();
    stream_reader(&input, |el| elements.push(el));
    let writer = StreamWriter::new("jabber:client");

    // Both writers accept every element; report the output sizes.
    let mut ours = Vec::new();
    for el in &elements {
        writer.write_element(&mut ours, el).expect("StreamWriter");
    }
    let mut theirs = Vec::new();
    for el in &elements {
        el.write_to(&mut theirs).expect("minidom");
    }
    eprintln!(
        "codec/write: {} elements, StreamWriter {} bytes, minidom {} bytes",
        elements.len(),
        ours.len(),
        theirs.len()
    );

    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(elements.len() as u64));
    let mut out = Vec::with_capacity(ours.len().max(theirs.len()));
    g.bench_function("stream_writer", |b| {
        b.iter(|| {
            out.clear();
            for el in &elements {
                writer.write_element(&mut out, el).unwrap();
            }
            black_box(out.len())
        })
    });
    g.bench_function("minidom_write_to", |b| {
        b.iter(|| {
            out.clear();
            for el in &elements {
                el.write_to(&mut out).unwrap();
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, read, write);
criterion_main!(benches);
