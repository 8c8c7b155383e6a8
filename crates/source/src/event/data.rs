//! The `data` bytes of the default format: byte-equal to what the original
//! adapter sent, i.e. aws-sdk-go v1's `Record` struct through Go's
//! `encoding/json` (see the contract, section 2, and the golden files made by
//! `tools/golden-gen`).
//!
//! What Go does, and so what this does: PascalCase members in declaration
//! order, every member present (`null` when absent), all ten members of every
//! attribute value, map keys sorted byte-wise, `[]byte` as padded base64,
//! HTML-safe string escaping, timestamps as RFC 3339 in UTC rounded to the
//! millisecond the way the Go SDK parses epoch seconds.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Identity, Record, StreamRecord};

use super::json::{array, blob, boolean, format_time, null, opt_str, sorted_object, string};

/// Appends the record's JSON to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"AwsRegion\":");
    opt_str(out, record.aws_region());
    out.extend_from_slice(b",\"Dynamodb\":");
    match record.dynamodb() {
        Some(r) => stream_record(r, out),
        None => null(out),
    }
    out.extend_from_slice(b",\"EventID\":");
    opt_str(out, record.event_id());
    out.extend_from_slice(b",\"EventName\":");
    opt_str(out, record.event_name().map(|n| n.as_str()));
    out.extend_from_slice(b",\"EventSource\":");
    opt_str(out, record.event_source());
    out.extend_from_slice(b",\"EventVersion\":");
    opt_str(out, record.event_version());
    out.extend_from_slice(b",\"UserIdentity\":");
    match record.user_identity() {
        Some(id) => identity(id, out),
        None => null(out),
    }
    out.push(b'}');
}

fn stream_record(r: &StreamRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"ApproximateCreationDateTime\":");
    match r.approximate_creation_date_time() {
        Some(t) => {
            out.push(b'"');
            out.extend_from_slice(format_time(t).as_bytes());
            out.push(b'"');
        }
        None => null(out),
    }
    out.extend_from_slice(b",\"Keys\":");
    opt_map(out, r.keys());
    out.extend_from_slice(b",\"NewImage\":");
    opt_map(out, r.new_image());
    out.extend_from_slice(b",\"OldImage\":");
    opt_map(out, r.old_image());
    out.extend_from_slice(b",\"SequenceNumber\":");
    opt_str(out, r.sequence_number());
    out.extend_from_slice(b",\"SizeBytes\":");
    match r.size_bytes() {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => null(out),
    }
    out.extend_from_slice(b",\"StreamViewType\":");
    opt_str(out, r.stream_view_type().map(|v| v.as_str()));
    out.push(b'}');
}

fn identity(id: &Identity, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"PrincipalId\":");
    opt_str(out, id.principal_id());
    out.extend_from_slice(b",\"Type\":");
    opt_str(out, id.r#type());
    out.push(b'}');
}

fn opt_map(out: &mut Vec<u8>, map: Option<&HashMap<String, AttributeValue>>) {
    match map {
        Some(m) => attribute_map(m, out),
        None => null(out),
    }
}

fn attribute_map(map: &HashMap<String, AttributeValue>, out: &mut Vec<u8>) {
    sorted_object(map, out, attribute_value);
}

/// One attribute value: all ten members, in Go's field order, the unused
/// ones `null`.
fn attribute_value(value: &AttributeValue, out: &mut Vec<u8>) {
    use AttributeValue as V;
    out.extend_from_slice(b"{\"B\":");
    match value {
        V::B(b) => blob(out, b),
        _ => null(out),
    }
    out.extend_from_slice(b",\"BOOL\":");
    match value {
        V::Bool(b) => boolean(out, *b),
        _ => null(out),
    }
    out.extend_from_slice(b",\"BS\":");
    match value {
        V::Bs(list) => array(out, list, blob),
        _ => null(out),
    }
    out.extend_from_slice(b",\"L\":");
    match value {
        V::L(list) => array(out, list, |out, v| attribute_value(v, out)),
        _ => null(out),
    }
    out.extend_from_slice(b",\"M\":");
    match value {
        V::M(m) => attribute_map(m, out),
        _ => null(out),
    }
    out.extend_from_slice(b",\"N\":");
    match value {
        V::N(n) => string(out, n),
        _ => null(out),
    }
    out.extend_from_slice(b",\"NS\":");
    match value {
        V::Ns(list) => array(out, list, |out, s| string(out, s)),
        _ => null(out),
    }
    out.extend_from_slice(b",\"NULL\":");
    match value {
        V::Null(b) => boolean(out, *b),
        _ => null(out),
    }
    out.extend_from_slice(b",\"S\":");
    match value {
        V::S(s) => string(out, s),
        _ => null(out),
    }
    out.extend_from_slice(b",\"SS\":");
    match value {
        V::Ss(list) => array(out, list, |out, s| string(out, s)),
        _ => null(out),
    }
    out.push(b'}');
}
