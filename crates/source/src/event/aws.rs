//! The `aws` data format: the record as the DynamoDB Streams API and AWS
//! Lambda give it — camelCase record members, PascalCase `dynamodb` members,
//! typed attribute values (`{"N":"12.5"}`) — plus Lambda's `eventSourceARN`,
//! so that code written for a Lambda trigger reads these events unchanged.
//!
//! Owns that shape and nothing else. It never writes a member the record does
//! not carry (no `null`s), never changes a value (numbers stay strings, digit
//! for digit), and never panics, whatever the record holds. Strings go
//! through [`super::json::string`], the one escaper of the crate.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Identity, Record, StreamRecord};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::json::{array, blob, boolean, sorted_object, string};

/// Appends the record's JSON to `out`; `stream_arn` becomes `eventSourceARN`,
/// as Lambda adds it (the Streams API record does not carry it).
pub fn encode_aws(record: &Record, stream_arn: &str, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    if let Some(v) = record.event_id() {
        string(o.member("eventID"), v);
    }
    if let Some(v) = record.event_name() {
        string(o.member("eventName"), v.as_str());
    }
    if let Some(v) = record.event_version() {
        string(o.member("eventVersion"), v);
    }
    if let Some(v) = record.event_source() {
        string(o.member("eventSource"), v);
    }
    if let Some(v) = record.aws_region() {
        string(o.member("awsRegion"), v);
    }
    if let Some(r) = record.dynamodb() {
        stream_record(r, o.member("dynamodb"));
    }
    if let Some(id) = record.user_identity() {
        identity(id, o.member("userIdentity"));
    }
    string(o.member("eventSourceARN"), stream_arn);
    o.close();
}

fn stream_record(r: &StreamRecord, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    if let Some(t) = r.approximate_creation_date_time() {
        epoch_seconds(o.member("ApproximateCreationDateTime"), t);
    }
    if let Some(m) = r.keys() {
        attribute_map(m, o.member("Keys"));
    }
    if let Some(m) = r.new_image() {
        attribute_map(m, o.member("NewImage"));
    }
    if let Some(m) = r.old_image() {
        attribute_map(m, o.member("OldImage"));
    }
    if let Some(v) = r.sequence_number() {
        string(o.member("SequenceNumber"), v);
    }
    if let Some(n) = r.size_bytes() {
        o.member("SizeBytes")
            .extend_from_slice(n.to_string().as_bytes());
    }
    if let Some(v) = r.stream_view_type() {
        string(o.member("StreamViewType"), v.as_str());
    }
    o.close();
}

fn identity(id: &Identity, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    if let Some(v) = id.principal_id() {
        string(o.member("principalId"), v);
    }
    if let Some(v) = id.r#type() {
        string(o.member("type"), v);
    }
    o.close();
}

/// Epoch seconds as a JSON number, as the API sends them.
///
/// The SDK parsed the wire's number into an `f64` and then into seconds and
/// nanoseconds, so `1704067200.123` arrives as `.122999906`. When that `f64`
/// gives back exactly this `DateTime`, its shortest decimal is the wire's
/// number again; otherwise (a `DateTime` built some other way) the exact
/// value is written, as the SDK's own formatter does. Rust prints `f64`
/// without an exponent, so both are valid JSON numbers.
fn epoch_seconds(out: &mut Vec<u8>, t: &DateTime) {
    if t.subsec_nanos() == 0 {
        out.extend_from_slice(t.secs().to_string().as_bytes());
        return;
    }
    // Below 2^40 s (35 000 years) an f64 still holds sub-microseconds, and
    // `from_secs_f64` cannot overflow.
    if t.secs().unsigned_abs() < 1 << 40 {
        let f = t.as_secs_f64();
        if DateTime::from_secs_f64(f) == *t {
            out.extend_from_slice(f.to_string().as_bytes());
            return;
        }
    }
    match t.fmt(Format::EpochSeconds) {
        Ok(s) => out.extend_from_slice(s.as_bytes()),
        // Never for EpochSeconds; the whole seconds keep the output valid.
        Err(_) => out.extend_from_slice(t.secs().to_string().as_bytes()),
    }
}

/// Attribute names sorted byte-wise, so that one record always gives the
/// same bytes.
fn attribute_map(map: &HashMap<String, AttributeValue>, out: &mut Vec<u8>) {
    sorted_object(map, out, attribute_value);
}

/// One attribute value: a single member named after its type.
fn attribute_value(value: &AttributeValue, out: &mut Vec<u8>) {
    use AttributeValue as V;
    match value {
        V::S(s) => {
            out.extend_from_slice(b"{\"S\":");
            string(out, s);
        }
        V::N(n) => {
            out.extend_from_slice(b"{\"N\":");
            string(out, n);
        }
        V::B(b) => {
            out.extend_from_slice(b"{\"B\":");
            blob(out, b);
        }
        V::Ss(list) => {
            out.extend_from_slice(b"{\"SS\":");
            array(out, list, |out, s| string(out, s));
        }
        V::Ns(list) => {
            out.extend_from_slice(b"{\"NS\":");
            array(out, list, |out, s| string(out, s));
        }
        V::Bs(list) => {
            out.extend_from_slice(b"{\"BS\":");
            array(out, list, blob);
        }
        V::M(m) => {
            out.extend_from_slice(b"{\"M\":");
            attribute_map(m, out);
        }
        V::L(list) => {
            out.extend_from_slice(b"{\"L\":");
            array(out, list, |out, v| attribute_value(v, out));
        }
        V::Null(b) => {
            out.extend_from_slice(b"{\"NULL\":");
            boolean(out, *b);
        }
        V::Bool(b) => {
            out.extend_from_slice(b"{\"BOOL\":");
            boolean(out, *b);
        }
        // A type newer than this SDK: its name and value are gone, and
        // inventing one would be a lie. An empty object keeps the JSON valid.
        _ => out.push(b'{'),
    }
    out.push(b'}');
}

/// A JSON object being written: puts the commas between members.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"name":` and hands back the output for the value. Names are
    /// this module's constants, plain ASCII: no escaping needed.
    fn member(&mut self, name: &'static str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamViewType};
    use aws_smithy_types::Blob;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";

    fn encode(record: &Record) -> String {
        let mut out = Vec::new();
        encode_aws(record, ARN, &mut out);
        String::from_utf8(out).expect("the encoder writes UTF-8")
    }

    /// The record's `NewImage` holding `value` under `a`, encoded, and just
    /// the value's text cut out.
    fn value_text(value: AttributeValue) -> String {
        let record = Record::builder()
            .dynamodb(StreamRecord::builder().new_image("a", value).build())
            .build();
        let text = encode(&record);
        let prefix = r#"{"dynamodb":{"NewImage":{"a":"#;
        let suffix = format!(r#"}}}},"eventSourceARN":"{ARN}"}}"#);
        text.strip_prefix(prefix)
            .and_then(|t| t.strip_suffix(&suffix))
            .unwrap_or_else(|| panic!("unexpected shape: {text}"))
            .to_owned()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    #[test]
    fn a_full_record_reads_as_the_streams_api_gives_it() {
        let sr = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_704_067_200))
            .keys("pk", s("user#1"))
            .keys("sk", n("1"))
            .new_image("pk", s("user#1"))
            .new_image("sk", n("1"))
            .new_image("name", s("Zoë"))
            .old_image("pk", s("user#1"))
            .old_image("sk", n("1"))
            .sequence_number("100000000000000000001")
            .size_bytes(42)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build();
        let record = Record::builder()
            .event_id("c81e728d9d4c2f636f067f89cc14862c")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(sr)
            .build();
        let want = format!(
            concat!(
                r#"{{"eventID":"c81e728d9d4c2f636f067f89cc14862c","eventName":"MODIFY","#,
                r#""eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","#,
                r#""dynamodb":{{"ApproximateCreationDateTime":1704067200,"#,
                r#""Keys":{{"pk":{{"S":"user#1"}},"sk":{{"N":"1"}}}},"#,
                r#""NewImage":{{"name":{{"S":"Zoë"}},"pk":{{"S":"user#1"}},"sk":{{"N":"1"}}}},"#,
                r#""OldImage":{{"pk":{{"S":"user#1"}},"sk":{{"N":"1"}}}},"#,
                r#""SequenceNumber":"100000000000000000001","SizeBytes":42,"#,
                r#""StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"{}"}}"#
            ),
            ARN
        );
        assert_eq!(encode(&record), want);
    }

    #[test]
    fn every_attribute_type_has_one_member_named_after_it() {
        assert_eq!(value_text(s("x")), r#"{"S":"x"}"#);
        assert_eq!(value_text(n("12.5")), r#"{"N":"12.5"}"#);
        // Non-UTF-8 bytes: 00 01 02 FD FE FF.
        assert_eq!(
            value_text(AttributeValue::B(Blob::new(vec![
                0, 1, 2, 0xfd, 0xfe, 0xff
            ]))),
            r#"{"B":"AAEC/f7/"}"#
        );
        assert_eq!(
            value_text(AttributeValue::Ss(vec!["a".into(), "b".into()])),
            r#"{"SS":["a","b"]}"#
        );
        assert_eq!(
            value_text(AttributeValue::Ns(vec!["1".into(), "2".into()])),
            r#"{"NS":["1","2"]}"#
        );
        assert_eq!(
            value_text(AttributeValue::Bs(vec![
                Blob::new(vec![0]),
                Blob::new(vec![0xff]),
                Blob::new(vec![0, 0xff]),
            ])),
            r#"{"BS":["AA==","/w==","AP8="]}"#
        );
        assert_eq!(value_text(AttributeValue::Null(true)), r#"{"NULL":true}"#);
        assert_eq!(value_text(AttributeValue::Bool(false)), r#"{"BOOL":false}"#);
        assert_eq!(value_text(AttributeValue::Bool(true)), r#"{"BOOL":true}"#);
    }

    #[test]
    fn maps_and_lists_nest_with_names_sorted_bytewise() {
        let inner = HashMap::from([
            ("z".to_owned(), AttributeValue::L(vec![s("one"), n("2")])),
            ("B".to_owned(), AttributeValue::M(HashMap::new())),
            ("a".to_owned(), AttributeValue::L(vec![])),
        ]);
        let value = AttributeValue::L(vec![AttributeValue::M(inner), AttributeValue::Null(true)]);
        assert_eq!(
            value_text(value),
            r#"{"L":[{"M":{"B":{"M":{}},"a":{"L":[]},"z":{"L":[{"S":"one"},{"N":"2"}]}}},{"NULL":true}]}"#
        );
    }

    #[test]
    fn numbers_stay_strings_digit_for_digit() {
        for digits in [
            "12345678901234567890123456789012345678",
            "-0.000000000000000000000000000000000001",
            "1E-130",
            "9.9999999999999999999999999999999999999E+125",
            // Not valid JSON numbers, but this format keeps DynamoDB's text.
            "+5",
            ".5",
            "007",
        ] {
            assert_eq!(value_text(n(digits)), format!(r#"{{"N":"{digits}"}}"#));
        }
    }

    #[test]
    fn strings_and_names_are_escaped_by_the_shared_escaper() {
        let record = Record::builder()
            .dynamodb(
                StreamRecord::builder()
                    .new_image("a\"<b>", s("line\nbreak\\ & \u{1}\u{2028}"))
                    .build(),
            )
            .build();
        let text = encode(&record);
        assert!(
            text.contains(r#"{"a\"\u003cb\u003e":{"S":"line\nbreak\\ \u0026 \u0001\u2028"}}"#),
            "{text}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed["dynamodb"]["NewImage"]["a\"<b>"]["S"],
            "line\nbreak\\ & \u{1}\u{2028}"
        );
    }

    #[test]
    fn empty_sets_are_empty_arrays() {
        // DynamoDB never sends an empty set, but a record may still hold one:
        // the output stays valid JSON and says what the record says.
        assert_eq!(value_text(AttributeValue::Ss(vec![])), r#"{"SS":[]}"#);
        assert_eq!(value_text(AttributeValue::Ns(vec![])), r#"{"NS":[]}"#);
        assert_eq!(value_text(AttributeValue::Bs(vec![])), r#"{"BS":[]}"#);
    }

    #[test]
    fn members_the_record_lacks_are_left_out() {
        let bare = Record::builder().build();
        assert_eq!(encode(&bare), format!(r#"{{"eventSourceARN":"{ARN}"}}"#));

        let keys_only = Record::builder()
            .event_name(OperationType::Remove)
            .dynamodb(StreamRecord::builder().keys("pk", s("x")).build())
            .build();
        assert_eq!(
            encode(&keys_only),
            format!(
                r#"{{"eventName":"REMOVE","dynamodb":{{"Keys":{{"pk":{{"S":"x"}}}}}},"eventSourceARN":"{ARN}"}}"#
            )
        );
    }

    #[test]
    fn user_identity_only_when_present_and_only_its_members() {
        let ttl = Record::builder()
            .user_identity(
                Identity::builder()
                    .principal_id("dynamodb.amazonaws.com")
                    .r#type("Service")
                    .build(),
            )
            .build();
        assert_eq!(
            encode(&ttl),
            format!(
                r#"{{"userIdentity":{{"principalId":"dynamodb.amazonaws.com","type":"Service"}},"eventSourceARN":"{ARN}"}}"#
            )
        );
        let partial = Record::builder()
            .user_identity(Identity::builder().r#type("Service").build())
            .build();
        assert_eq!(
            encode(&partial),
            format!(r#"{{"userIdentity":{{"type":"Service"}},"eventSourceARN":"{ARN}"}}"#)
        );
        assert!(!encode(&Record::builder().build()).contains("userIdentity"));
    }

    fn seconds(t: DateTime) -> String {
        let mut out = Vec::new();
        epoch_seconds(&mut out, &t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn creation_time_is_epoch_seconds_keeping_any_fraction() {
        assert_eq!(seconds(DateTime::from_secs(1_704_067_200)), "1704067200");
        assert_eq!(seconds(DateTime::from_secs(0)), "0");
        assert_eq!(
            seconds(DateTime::from_fractional_secs(1_700_000_000, 0.5)),
            "1700000000.5"
        );
        // As the SDK parses the wire's `1704067200.123` (nanos .122999906).
        assert_eq!(
            seconds(DateTime::from_secs_f64(1_704_067_200.123)),
            "1704067200.123"
        );
        // Built from exact nanoseconds, which no f64 near 1.7e9 holds.
        assert_eq!(
            seconds(DateTime::from_secs_and_nanos(1_704_067_200, 123_000_000)),
            "1704067200.123"
        );
        assert_eq!(
            seconds(DateTime::from_secs_and_nanos(1_704_067_200, 1)),
            "1704067200.000000001"
        );
        assert_eq!(seconds(DateTime::from_secs_f64(-0.5)), "-0.5");
        assert_eq!(
            seconds(DateTime::from_secs_and_nanos(i64::MIN, 1)),
            "-9223372036854775807.999999999"
        );
    }

    #[test]
    fn every_output_is_json() {
        let record = Record::builder()
            .event_id("e")
            .user_identity(Identity::builder().build())
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs_and_nanos(
                        i64::MAX,
                        999_999_999,
                    ))
                    .new_image(
                        "m",
                        AttributeValue::M(HashMap::from([("".to_owned(), s(""))])),
                    )
                    .build(),
            )
            .build();
        let text = encode(&record);
        let parsed: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(parsed["userIdentity"], serde_json::json!({}));
        assert_eq!(parsed["dynamodb"]["NewImage"]["m"]["M"][""]["S"], "");
    }
}
