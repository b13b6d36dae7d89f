//! In-band registration, `jabber:iq:register` (XEP-0077; seed 001):
//! the form, registration, password change, update and `<remove/>`.

use minidom::Element;

use crate::ns;
use crate::steps::iq;

/// What a server asks for (the result of the IQ-get).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterForm {
    /// `<instructions/>`.
    pub instructions: Option<String>,
    /// The field names, in order (`username`, `password`, `email`...).
    pub fields: Vec<String>,
    /// `<registered/>`: the account exists (inside a session).
    pub registered: bool,
    /// A `jabber:x:data` form, when the server provides one.
    pub x_data: Option<Element>,
}

impl RegisterForm {
    /// The form's `<query/>`.
    pub fn to_query(&self) -> Element {
        let mut q = Element::builder("query", ns::IQ_REGISTER).build();
        if let Some(i) = &self.instructions {
            q.append_child(
                Element::builder("instructions", ns::IQ_REGISTER)
                    .append(i.as_str())
                    .build(),
            );
        }
        if self.registered {
            q.append_child(Element::builder("registered", ns::IQ_REGISTER).build());
        }
        for f in &self.fields {
            q.append_child(Element::builder(f.as_str(), ns::IQ_REGISTER).build());
        }
        if let Some(x) = &self.x_data {
            q.append_child(x.clone());
        }
        q
    }

    /// Reads a form from a `<query/>`.
    pub fn from_query(q: &Element) -> Self {
        let mut f = RegisterForm::default();
        for c in q.children() {
            if c.has_ns(ns::IQ_REGISTER) {
                match c.name() {
                    "instructions" => f.instructions = Some(c.text().trim().to_owned()),
                    "registered" => f.registered = true,
                    "remove" | "key" => {}
                    n => f.fields.push(n.to_owned()),
                }
            } else if c.is("x", "jabber:x:data") {
                f.x_data = Some(c.clone());
            }
        }
        f
    }
}

/// A `jabber:iq:register` IQ as the server reads it. `Debug` shows the
/// field names and values, but not the value of `password`, nor the query.
#[derive(Clone, PartialEq)]
pub enum RegisterQuery {
    /// IQ-get: the form.
    Get {
        /// The IQ id.
        id: String,
    },
    /// IQ-set with fields.
    Set {
        /// The IQ id.
        id: String,
        /// The fields with their values, in order.
        fields: Vec<(String, String)>,
        /// The query as sent (echoed in legacy errors).
        query: Element,
    },
    /// IQ-set with `<remove/>`.
    Remove {
        /// The IQ id.
        id: String,
    },
}

impl std::fmt::Debug for RegisterQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Get { id } => f.debug_struct("Get").field("id", id).finish(),
            Self::Set { id, fields, .. } => f
                .debug_struct("Set")
                .field("id", id)
                .field("fields", &RedactedFields(fields))
                .finish_non_exhaustive(),
            Self::Remove { id } => f.debug_struct("Remove").field("id", id).finish(),
        }
    }
}

/// Registration fields for `Debug`: names and values, but `<redacted>` for
/// the value of `password`.
pub(crate) struct RedactedFields<'a>(pub(crate) &'a [(String, String)]);

impl std::fmt::Debug for RedactedFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, v)| {
                let v: &dyn std::fmt::Debug = if n == "password" { &Redacted } else { v };
                (n, v)
            }))
            .finish()
    }
}

/// `<redacted>`, unquoted.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl RegisterQuery {
    /// Reads an IQ carrying a `jabber:iq:register` query; `None` otherwise.
    pub fn parse(el: &Element) -> Option<Self> {
        if !el.is("iq", ns::JABBER_CLIENT) {
            return None;
        }
        let q = el.get_child("query", ns::IQ_REGISTER)?;
        let id = el.attr("id").unwrap_or_default().to_owned();
        match el.attr("type") {
            Some("get") => Some(Self::Get { id }),
            Some("set") if q.has_child("remove", ns::IQ_REGISTER) => Some(Self::Remove { id }),
            Some("set") => Some(Self::Set {
                id,
                fields: q
                    .children()
                    .filter(|c| c.has_ns(ns::IQ_REGISTER) && c.name() != "key")
                    .map(|c| (c.name().to_owned(), c.text().trim().to_owned()))
                    .collect(),
                query: q.clone(),
            }),
            _ => None,
        }
    }
}

/// The value of `name` among `fields`, when present and not empty.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The client's IQ-get (the registration enquiry).
pub fn get(id: &str) -> Element {
    iq("get", id)
        .append(Element::builder("query", ns::IQ_REGISTER).build())
        .build()
}

/// The client's IQ-set with `fields`.
pub fn set(id: &str, fields: &[(String, String)]) -> Element {
    let mut q = Element::builder("query", ns::IQ_REGISTER).build();
    for (n, v) in fields {
        q.append_child(
            Element::builder(n.as_str(), ns::IQ_REGISTER)
                .append(v.as_str())
                .build(),
        );
    }
    iq("set", id).append(q).build()
}

/// The client's IQ-set with `<remove/>`.
pub fn remove(id: &str) -> Element {
    iq("set", id)
        .append(
            Element::builder("query", ns::IQ_REGISTER)
                .append(Element::builder("remove", ns::IQ_REGISTER).build())
                .build(),
        )
        .build()
}

/// The server's answer with the form.
pub fn form_result(id: &str, form: &RegisterForm) -> Element {
    iq("result", id).append(form.to_query()).build()
}

/// The server's empty success.
pub fn result(id: &str) -> Element {
    iq("result", id).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed001_form_and_submission() {
        let form: Element = "<iq xmlns='jabber:client' type='result'><query xmlns='jabber:iq:register'><instructions> Choose a username and password to register with this server. </instructions><name/><email/><username/><password/></query></iq>".parse().unwrap();
        let f = RegisterForm::from_query(form.get_child("query", ns::IQ_REGISTER).unwrap());
        assert_eq!(f.fields, ["name", "email", "username", "password"]);
        assert_eq!(
            f.instructions.as_deref(),
            Some("Choose a username and password to register with this server.")
        );
        let set: Element = "<iq xmlns='jabber:client' type='set'><query xmlns='jabber:iq:register'><username>leslie</username><password>secret</password><email>lel@plevna.com</email><name>Leslie Hawke</name></query></iq>".parse().unwrap();
        let Some(RegisterQuery::Set { fields, .. }) = RegisterQuery::parse(&set) else {
            panic!()
        };
        assert_eq!(field(&fields, "username"), Some("leslie"));
        assert_eq!(field(&fields, "name"), Some("Leslie Hawke"));
        assert_eq!(field(&fields, "nickname"), None);
    }
}
