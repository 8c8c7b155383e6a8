//! FILTER's JSON, read as written.
//!
//! `serde_json::Value` would turn `12345678901234567890123456789012345678`
//! into an `f64` (this workspace does not enable `arbitrary_precision`, and
//! turning it on would change every crate's JSON), would keep only the last of
//! two equal keys, and may reorder keys. This file owns reading the FILTER
//! text into [`Raw`], which keeps each number's text, keys in order and
//! duplicates, so the parser can compare exactly and report what was written.
//! It never interprets patterns.
//!
//! serde_json still does the parsing (escapes, surrogates, nesting limit). A
//! small scan of the text lists the number tokens in order; serde_json visits
//! numbers in the same order, so the k-th number visited takes the k-th token.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// A JSON value as written in FILTER.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Raw {
    Null,
    Bool(bool),
    /// The number's text: as written when known, else serde_json's rendering.
    Num(String),
    Str(String),
    Arr(Vec<Raw>),
    /// Keys in document order, duplicates kept.
    Obj(Vec<(String, Raw)>),
}

/// Reads `text` as JSON. The error is serde_json's, with line and column.
pub(super) fn read(text: &str) -> Result<Raw, serde_json::Error> {
    let tokens = number_tokens(text);
    let next = Cell::new(0);
    let raw = read_with(text, &tokens, &next)?;
    if next.get() == tokens.len() {
        return Ok(raw);
    }
    // The scan and serde_json disagree on how many numbers there are; that
    // should not happen, but a wrong pairing would compare the wrong number,
    // so fall back to serde_json's own (possibly rounded) numbers.
    read_with(text, &[], &Cell::new(0))
}

fn read_with(text: &str, tokens: &[&str], next: &Cell<usize>) -> Result<Raw, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = Seed { tokens, next }.deserialize(&mut de)?;
    de.end()?;
    Ok(raw)
}

/// The number tokens of a JSON text, in order. Only meaningful for valid
/// JSON, which serde_json checks separately: outside strings, a number is
/// the only token that starts with `-` or a digit.
fn number_tokens(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                while let Some(&s) = b.get(i) {
                    i += if s == b'\\' { 2 } else { 1 };
                    if s == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                // Both ends sit on ASCII bytes (or the end), so this is a
                // char boundary; `get` keeps it panic-free regardless.
                if let Some(token) = text.get(start..i) {
                    out.push(token);
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Seed<'c, 's> {
    tokens: &'c [&'s str],
    next: &'c Cell<usize>,
}

impl Seed<'_, '_> {
    fn number(self, shown: impl fmt::Display) -> Raw {
        let k = self.next.get();
        self.next.set(k.saturating_add(1));
        match self.tokens.get(k) {
            Some(token) => Raw::Num((*token).to_owned()),
            None => Raw::Num(shown.to_string()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Raw;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(self.number(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(self.number(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(self.number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Raw::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            entries.push((key, value));
        }
        Ok(Raw::Obj(entries))
    }
}

/// Compact JSON, numbers as written: what error messages show as "got".
impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fn string(f: &mut fmt::Formatter, s: &str) -> fmt::Result {
            f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?)
        }
        match self {
            Raw::Null => f.write_str("null"),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Num(n) => f.write_str(n),
            Raw::Str(s) => string(f, s),
            Raw::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Raw::Obj(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    string(f, k)?;
                    write!(f, ": {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_number_text_as_written() {
        let raw = read(r#"[12345678901234567890123456789012345678, -0.10, 1E+2, 7]"#).unwrap();
        assert_eq!(
            raw,
            Raw::Arr(vec![
                Raw::Num("12345678901234567890123456789012345678".into()),
                Raw::Num("-0.10".into()),
                Raw::Num("1E+2".into()),
                Raw::Num("7".into()),
            ])
        );
    }

    #[test]
    fn numbers_inside_strings_and_keys_are_not_tokens() {
        let text = r#"{"a-1\"2": "-3 \\", "b": [true, null, 4e-1], "c\\": 5}"#;
        assert_eq!(number_tokens(text), vec!["4e-1", "5"]);
        let raw = read(text).unwrap();
        assert_eq!(
            raw,
            Raw::Obj(vec![
                ("a-1\"2".into(), Raw::Str("-3 \\".into())),
                (
                    "b".into(),
                    Raw::Arr(vec![Raw::Bool(true), Raw::Null, Raw::Num("4e-1".into())])
                ),
                ("c\\".into(), Raw::Num("5".into())),
            ])
        );
    }

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let raw = read(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        let Raw::Obj(entries) = raw else {
            panic!("not an object")
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
    }

    #[test]
    fn displays_compact_json() {
        let raw = read(r#"{"x":["~",3.50,{"y":"q\"z"}],"n":null,"t":false}"#).unwrap();
        assert_eq!(
            raw.to_string(),
            r#"{"x": ["~", 3.50, {"y": "q\"z"}], "n": null, "t": false}"#
        );
    }

    #[test]
    fn rejects_invalid_json_and_trailing_text() {
        assert!(read("[1,]").is_err());
        assert!(read("[1] [2]").is_err());
        assert!(read("").is_err());
    }
}
