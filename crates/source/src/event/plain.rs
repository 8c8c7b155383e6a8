//! The `plain` data format: the change as ordinary JSON, for consumers that
//! want `{"price": 12.5}` rather than DynamoDB's `{"price": {"N": "12.5"}}`.
//! Every member is always present (`null` when the record lacks it).
//!
//! Owns the mapping of attribute values to plain JSON. A number is written as
//! DynamoDB's own digits — never through a float, which would lose 38-digit
//! values — and only its form is repaired where JSON demands it. It never
//! panics, whatever the record holds. Strings go through
//! [`super::json::string`] and times through [`super::json::format_time`], so
//! every format escapes and dates alike.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Identity, Record};

use super::json::{array, blob, format_time, null, opt_str, sorted_object, string};

/// Appends the record's JSON to `out`; `table` is the table's name, which
/// the record itself does not carry.
pub fn encode_plain(record: &Record, table: &str, out: &mut Vec<u8>) {
    let r = record.dynamodb();
    out.extend_from_slice(b"{\"operation\":");
    opt_str(out, record.event_name().map(|op| op.as_str()));
    out.extend_from_slice(b",\"keys\":");
    opt_item(out, r.and_then(|r| r.keys()));
    out.extend_from_slice(b",\"newImage\":");
    opt_item(out, r.and_then(|r| r.new_image()));
    out.extend_from_slice(b",\"oldImage\":");
    opt_item(out, r.and_then(|r| r.old_image()));
    out.extend_from_slice(b",\"sequenceNumber\":");
    opt_str(out, r.and_then(|r| r.sequence_number()));
    out.extend_from_slice(b",\"approximateCreationDateTime\":");
    match r.and_then(|r| r.approximate_creation_date_time()) {
        Some(t) => string(out, &format_time(t)),
        None => null(out),
    }
    out.extend_from_slice(b",\"userIdentity\":");
    match record.user_identity() {
        Some(id) => identity(id, out),
        None => null(out),
    }
    out.extend_from_slice(b",\"table\":");
    string(out, table);
    out.push(b'}');
}

fn identity(id: &Identity, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"principalId\":");
    opt_str(out, id.principal_id());
    out.extend_from_slice(b",\"type\":");
    opt_str(out, id.r#type());
    out.push(b'}');
}

fn opt_item(out: &mut Vec<u8>, item: Option<&HashMap<String, AttributeValue>>) {
    match item {
        Some(m) => item_object(m, out),
        None => null(out),
    }
}

/// Attribute names sorted byte-wise, so that one record always gives the
/// same bytes (a `HashMap` has no order of its own).
fn item_object(map: &HashMap<String, AttributeValue>, out: &mut Vec<u8>) {
    sorted_object(map, out, plain_value);
}

fn plain_value(value: &AttributeValue, out: &mut Vec<u8>) {
    use AttributeValue as V;
    match value {
        V::S(s) => string(out, s),
        V::N(n) => number(out, n),
        V::B(b) => blob(out, b),
        V::Ss(list) => array(out, list, |out, s| string(out, s)),
        V::Ns(list) => array(out, list, |out, n| number(out, n)),
        V::Bs(list) => array(out, list, blob),
        V::M(m) => item_object(m, out),
        V::L(list) => array(out, list, |out, v| plain_value(v, out)),
        V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // DynamoDB's NULL is always `true`; `null` is all it can mean here.
        V::Null(_) => null(out),
        // A type newer than this SDK: its value is gone; `null` says so
        // without inventing one.
        _ => null(out),
    }
}

/// DynamoDB's number text as a JSON number, its digits copied as they are.
///
/// DynamoDB accepts forms JSON does not (`+5`, `.5`, `5.`, `007`); those get
/// the JSON form of the same digits (`5`, `0.5`, `5`, `7`). Text that is no
/// DynamoDB number — no number at all, or one beyond its range such as
/// `1e400`, which JSON readers cannot hold — is never sent by DynamoDB and is
/// kept as a string, so the output stays readable JSON and nothing is lost.
fn number(out: &mut Vec<u8>, text: &str) {
    let Some(n) = Number::parse(text).filter(Number::in_dynamodb_range) else {
        string(out, text);
        return;
    };
    if n.negative {
        out.push(b'-');
    }
    // JSON allows no leading zeros: `007` → `7`, `00.5` → `0.5`, `.5` → `0.5`.
    let int = n.int.trim_start_matches('0');
    out.extend_from_slice(if int.is_empty() { b"0" } else { int.as_bytes() });
    // An empty fraction (`5.`) is dropped with its point.
    if !n.frac.is_empty() {
        out.push(b'.');
        out.extend_from_slice(n.frac.as_bytes());
    }
    // Already JSON's form (`e`/`E`, optional sign, digits): copied.
    out.extend_from_slice(n.exp.as_bytes());
}

/// The parts of a decimal number: `[+-]? digits? (. digits?)? ([eE] [+-]? digits)?`
/// with at least one digit before the exponent. Every part is ASCII, so it
/// can be written out raw.
struct Number<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    exp: &'a str,
}

impl<'a> Number<'a> {
    fn parse(text: &'a str) -> Option<Number<'a>> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int, rest) = split_digits(rest);
        let (frac, exp) = match rest.strip_prefix('.') {
            Some(after_point) => split_digits(after_point),
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !exp.is_empty() {
            let power = exp.strip_prefix(['e', 'E'])?;
            let power = power.strip_prefix(['+', '-']).unwrap_or(power);
            if power.is_empty() || !power.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
        }
        Some(Number {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// Zero, or a magnitude from 1E-130 to 9.99…E+125: DynamoDB's range.
    fn in_dynamodb_range(&self) -> bool {
        let int = self.int.trim_start_matches('0');
        // The power of ten of the first significant digit, exponent aside.
        let lead = if int.is_empty() {
            match self.frac.bytes().position(|b| b != b'0') {
                Some(zeros) => -to_i64(zeros) - 1,
                None => return true,
            }
        } else {
            to_i64(int.len()) - 1
        };
        // `parse` checked the exponent: `e` or `E`, a sign maybe, digits.
        let power = self.exp.get(1..).unwrap_or_default();
        let (negative, digits) = match power.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, power.trim_start_matches('+')),
        };
        let magnitude = digits.bytes().fold(0i64, |n, d| {
            n.saturating_mul(10)
                .saturating_add(i64::from(d.saturating_sub(b'0')))
        });
        let power = if negative { -magnitude } else { magnitude };
        (-130..=125).contains(&lead.saturating_add(power))
    }
}

/// A length as `i64` (saturating; no text is that long).
fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The leading ASCII digits of `s`, and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    // Digits are one byte each, so `len` is a char boundary.
    s.split_at(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord};
    use aws_smithy_types::Blob;
    use aws_smithy_types::DateTime;

    fn encode(record: &Record) -> String {
        let mut out = Vec::new();
        encode_plain(record, "orders", &mut out);
        String::from_utf8(out).expect("the encoder writes UTF-8")
    }

    /// `value` stored under `a` in a `NewImage`, encoded; just its text.
    fn value_text(value: AttributeValue) -> String {
        let mut out = Vec::new();
        item_object(&HashMap::from([("a".to_owned(), value)]), &mut out);
        let text = String::from_utf8(out).unwrap();
        text.strip_prefix(r#"{"a":"#)
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or_else(|| panic!("unexpected shape: {text}"))
            .to_owned()
    }

    fn number_text(n: &str) -> String {
        value_text(AttributeValue::N(n.into()))
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    #[test]
    fn a_full_record_as_plain_json() {
        let sr = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_fractional_secs(1_704_067_212, 0.5))
            .keys("pk", s("user#1"))
            .keys("sk", n("1"))
            .new_image("pk", s("user#1"))
            .new_image("sk", n("1"))
            .new_image("price", n("12.50"))
            .old_image("pk", s("user#1"))
            .old_image("sk", n("1"))
            .sequence_number("100000000000000000001")
            .size_bytes(42)
            .build();
        let record = Record::builder()
            .event_id("c81e728d9d4c2f636f067f89cc14862c")
            .event_name(OperationType::Modify)
            .dynamodb(sr)
            .build();
        assert_eq!(
            encode(&record),
            concat!(
                r#"{"operation":"MODIFY","keys":{"pk":"user#1","sk":1},"#,
                r#""newImage":{"pk":"user#1","price":12.50,"sk":1},"#,
                r#""oldImage":{"pk":"user#1","sk":1},"#,
                r#""sequenceNumber":"100000000000000000001","#,
                r#""approximateCreationDateTime":"2024-01-01T00:00:12.5Z","#,
                r#""userIdentity":null,"table":"orders"}"#
            )
        );
    }

    #[test]
    fn every_attribute_type_as_ordinary_json() {
        assert_eq!(value_text(s("x")), r#""x""#);
        assert_eq!(value_text(n("-12.5")), "-12.5");
        // Non-UTF-8 bytes: 00 01 02 FD FE FF.
        assert_eq!(
            value_text(AttributeValue::B(Blob::new(vec![
                0, 1, 2, 0xfd, 0xfe, 0xff
            ]))),
            r#""AAEC/f7/""#
        );
        assert_eq!(
            value_text(AttributeValue::Ss(vec!["a".into(), "b".into()])),
            r#"["a","b"]"#
        );
        assert_eq!(
            value_text(AttributeValue::Ns(vec![
                "1".into(),
                "+2".into(),
                "1E-130".into()
            ])),
            "[1,2,1E-130]"
        );
        assert_eq!(
            value_text(AttributeValue::Bs(vec![
                Blob::new(vec![0]),
                Blob::new(vec![0xff]),
                Blob::new(vec![0, 0xff]),
            ])),
            r#"["AA==","/w==","AP8="]"#
        );
        assert_eq!(value_text(AttributeValue::Null(true)), "null");
        assert_eq!(value_text(AttributeValue::Bool(false)), "false");
        assert_eq!(value_text(AttributeValue::Bool(true)), "true");
    }

    #[test]
    fn maps_and_lists_nest_with_names_sorted_bytewise() {
        let inner = HashMap::from([
            ("z".to_owned(), AttributeValue::L(vec![s("one"), n("2")])),
            ("B".to_owned(), AttributeValue::M(HashMap::new())),
            ("a".to_owned(), AttributeValue::L(vec![])),
        ]);
        let value = AttributeValue::L(vec![AttributeValue::M(inner), AttributeValue::Null(true)]);
        assert_eq!(value_text(value), r#"[{"B":{},"a":[],"z":["one",2]},null]"#);
    }

    #[test]
    fn numbers_keep_dynamodbs_digits() {
        for digits in [
            "12345678901234567890123456789012345678",
            "-99999999999999999999999999999999999999",
            "0.000000000000000000000000000000000001",
            "0.12345678901234567890123456789012345678",
            "1E-130",
            "9.9999999999999999999999999999999999999E+125",
            "1e3",
            "1E+2",
            "9007199254740993",
            "1.500",
            "0",
            "-0",
            "-0.0",
        ] {
            assert_eq!(number_text(digits), digits);
        }
    }

    #[test]
    fn number_forms_json_rejects_are_repaired_without_touching_digits() {
        for (dynamodb, json) in [
            ("+5", "5"),
            ("+1.5E3", "1.5E3"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5"),
            ("5.e3", "5e3"),
            ("007", "7"),
            ("00.00100", "0.00100"),
            ("-00", "-0"),
            ("1e007", "1e007"),
        ] {
            let got = number_text(dynamodb);
            assert_eq!(got, json, "{dynamodb}");
            let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert!(parsed.is_number(), "{dynamodb} → {got}");
        }
    }

    #[test]
    fn text_that_is_no_number_stays_a_string() {
        for text in [
            "", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "NaN", " 1", "1 ", "1_000", "١",
        ] {
            assert_eq!(
                number_text(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers_beyond_dynamodbs_range_stay_strings() {
        // Found by the property tests: `1e310` became a JSON number that
        // serde_json and Go refuse outright (JavaScript reads Infinity).
        for text in [
            "0.1e1000",
            "1e310",
            "-1e400",
            "1E+126",
            "1e-131",
            "0.00001e-126",
            "1e99999999999999999999",
            "-1e-99999999999999999999",
        ] {
            assert_eq!(
                number_text(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
        for text in [
            "1E-130",
            "-1E-130",
            "0.0001e-126",
            "9.9999999999999999999999999999999999999E+125",
            "0.99e126",
            "0e99999999999999999999",
            "000",
        ] {
            let got = number_text(text);
            let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert!(parsed.is_number(), "{text} → {got}");
        }
    }

    #[test]
    fn strings_and_names_are_escaped_by_the_shared_escaper() {
        let text = value_text(AttributeValue::M(HashMap::from([(
            "a\"<b>".to_owned(),
            s("line\nbreak\\ & \u{1}\u{2028}"),
        )])));
        assert_eq!(
            text,
            r#"{"a\"\u003cb\u003e":"line\nbreak\\ \u0026 \u0001\u2028"}"#
        );
    }

    #[test]
    fn empty_sets_are_empty_arrays() {
        // DynamoDB never sends an empty set; a record holding one still gives
        // valid JSON that says what the record says.
        assert_eq!(value_text(AttributeValue::Ss(vec![])), "[]");
        assert_eq!(value_text(AttributeValue::Ns(vec![])), "[]");
        assert_eq!(value_text(AttributeValue::Bs(vec![])), "[]");
    }

    #[test]
    fn absent_members_are_null_and_every_member_is_there() {
        let mut out = Vec::new();
        encode_plain(&Record::builder().build(), "t<1>", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"operation":null,"keys":null,"newImage":null,"oldImage":null,"#,
                r#""sequenceNumber":null,"approximateCreationDateTime":null,"#,
                r#""userIdentity":null,"table":"t\u003c1\u003e"}"#
            )
        );
    }

    #[test]
    fn a_ttl_delete_names_its_user_identity() {
        let record = Record::builder()
            .event_name(OperationType::Remove)
            .user_identity(
                Identity::builder()
                    .principal_id("dynamodb.amazonaws.com")
                    .r#type("Service")
                    .build(),
            )
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", s("session#42"))
                    .old_image("pk", s("session#42"))
                    .build(),
            )
            .build();
        let parsed: serde_json::Value = serde_json::from_str(&encode(&record)).unwrap();
        assert_eq!(parsed["operation"], "REMOVE");
        assert_eq!(
            parsed["userIdentity"],
            serde_json::json!({"principalId": "dynamodb.amazonaws.com", "type": "Service"})
        );
        assert_eq!(parsed["newImage"], serde_json::Value::Null);
        assert_eq!(parsed["oldImage"], serde_json::json!({"pk": "session#42"}));

        let partial = Record::builder()
            .user_identity(Identity::builder().principal_id("someone").build())
            .build();
        let parsed: serde_json::Value = serde_json::from_str(&encode(&partial)).unwrap();
        assert_eq!(
            parsed["userIdentity"],
            serde_json::json!({"principalId": "someone", "type": null})
        );
    }
}
