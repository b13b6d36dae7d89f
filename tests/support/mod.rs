//! Shared test support: loading the C:/S: transcripts of `tests/fixtures/`.
#![allow(dead_code)]

pub mod bosh_net;
pub mod pair;
pub mod prosody_web;
pub mod sm_world;
pub mod test_gss;
pub mod toy_gssapi;

use std::path::{Path, PathBuf};

/// The text of the first `<tag ...>text</tag>` in `xml` (a transcript
/// line or a whole side of one).
pub fn text_of<'a>(tag: &str, xml: &'a str) -> Option<&'a str> {
    let start = [format!("<{tag} "), format!("<{tag}>")]
        .iter()
        .filter_map(|t| xml.find(t.as_str()))
        .min()?;
    let open_end = start + xml[start..].find('>')? + 1;
    let close = open_end + xml[open_end..].find(&format!("</{tag}>"))?;
    Some(&xml[open_end..close])
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    C,
    /// Server to client.
    S,
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Bytes on the wire.
    Data(Dir, Vec<u8>),
    /// An annotation line (`-- ...`) of the capturing tool.
    Note(String),
}

/// A transcript file.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub name: String,
    pub entries: Vec<Entry>,
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `el` without its whitespace-only text nodes (pretty-printing),
/// recursively; `trim`: the other text nodes trimmed as well.
pub fn without_blank_text(el: &minidom::Element, trim: bool) -> minidom::Element {
    let mut out = minidom::Element::builder(el.name(), el.ns()).build();
    for ((ns, name), value) in el.attrs().iter() {
        out.attrs_mut()
            .insert(ns.clone(), name.clone(), value.clone());
    }
    for node in el.nodes() {
        match node {
            minidom::Node::Element(c) => {
                out.append_child(without_blank_text(c, trim));
            }
            minidom::Node::Text(t) if t.trim().is_empty() => {}
            minidom::Node::Text(t) if trim => out.append_text(t.trim()),
            minidom::Node::Text(t) => out.append_text(t.as_str()),
        }
    }
    out
}

/// The elements of a fragment written inside a jabber:client stream.
pub fn elements_of(fragment: &str) -> Vec<minidom::Element> {
    let doc = format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='{}'>{fragment}",
        xmpp_sansio::ns::STREAM
    );
    let mut reader = xmpp_sansio::xml::StreamReader::default();
    let mut rest = doc.as_bytes();
    let mut out = Vec::new();
    while let Some(ev) = reader.read(&mut rest).unwrap() {
        if let xmpp_sansio::xml::StreamEvent::Element(e) = ev {
            out.push(e);
        }
    }
    out
}

/// The one stanza `xml`, read as our stream reader reads it inside a
/// jabber:client stream (panics on anything else).
pub fn parse_stanza(xml: &str) -> minidom::Element {
    let doc = format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>{xml}"
    );
    let mut reader = xmpp_sansio::xml::StreamReader::default();
    let mut input = doc.as_bytes();
    let _header = reader.read(&mut input).unwrap();
    match reader.read(&mut input) {
        Ok(Some(xmpp_sansio::xml::StreamEvent::Element(el))) => el,
        other => panic!("{xml}: {other:?}"),
    }
}

/// `fuzz/seeds/<role>/`: the checked-in seed corpus of a fuzz target.
pub fn fuzz_seed_dir(role: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(role)
}

/// The seeds of `fuzz/seeds/<role>/`, by file name, sorted.
pub fn fuzz_seeds(role: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_seed_dir(role);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("seed"))
        })
        .collect()
}

impl Transcript {
    /// Loads `tests/fixtures/<rel>`. Files under `seeds/` are transcribed
    /// line by line: consecutive lines of one direction are joined with
    /// `\n`. Files under `prosody/` hold one socket read/write per line:
    /// they are joined with nothing.
    pub fn load(rel: &str) -> Transcript {
        let path = fixtures_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let newline_joined = rel.starts_with("seeds/");
        let mut entries: Vec<Entry> = Vec::new();
        for line in text.lines() {
            let (dir, rest) = if let Some(r) = line.strip_prefix("C: ") {
                (Dir::C, r)
            } else if let Some(r) = line.strip_prefix("S: ") {
                (Dir::S, r)
            } else if let Some(r) = line.strip_prefix("-- ") {
                entries.push(Entry::Note(r.to_owned()));
                continue;
            } else {
                continue;
            };
            if newline_joined {
                if let Some(Entry::Data(d, buf)) = entries.last_mut() {
                    if *d == dir {
                        buf.push(b'\n');
                        buf.extend_from_slice(rest.as_bytes());
                        continue;
                    }
                }
            }
            entries.push(Entry::Data(dir, rest.as_bytes().to_vec()));
        }
        Transcript {
            name: rel.to_owned(),
            entries,
        }
    }

    /// Every TCP transcript in `tests/fixtures/<dir>`: the WebSocket and BOSH
    /// captures beside them (`*_ws_*`, `*_bosh_*`: one message or HTTP body
    /// per line, no XML stream) are left out; `tests/web_fixtures.rs` reads them.
    pub fn all_in(dir: &str) -> Vec<Transcript> {
        let mut names: Vec<String> = std::fs::read_dir(fixtures_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".txt") && !n.contains("_ws_") && !n.contains("_bosh_"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| Transcript::load(&format!("{dir}/{n}")))
            .collect()
    }

    /// The transcript split into TCP connections: a client that opens a
    /// stream after the server closed its own (FAST logins reconnect)
    /// starts a new connection.
    pub fn connections(&self) -> Vec<Transcript> {
        let mut out = vec![Transcript {
            name: self.name.clone(),
            entries: Vec::new(),
        }];
        for e in &self.entries {
            if let Entry::Data(Dir::C, b) = e {
                let closed = String::from_utf8_lossy(&out.last().unwrap().bytes_of(Dir::S))
                    .contains("</stream:stream>");
                if closed && (b.starts_with(b"<?xml") || b.starts_with(b"<stream:stream")) {
                    out.push(Transcript {
                        name: format!("{} (connection {})", self.name, out.len() + 1),
                        entries: Vec::new(),
                    });
                }
            }
            out.last_mut().unwrap().entries.push(e.clone());
        }
        out
    }

    /// All bytes one side sent, concatenated in order.
    pub fn bytes_of(&self, dir: Dir) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            if let Entry::Data(d, b) = e {
                if *d == dir {
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }

    /// The chunks one side sent, as captured.
    pub fn chunks_of(&self, dir: Dir) -> Vec<Vec<u8>> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Data(d, b) if *d == dir => Some(b.clone()),
                _ => None,
            })
            .collect()
    }

    /// The annotation lines.
    pub fn notes(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Note(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
}
