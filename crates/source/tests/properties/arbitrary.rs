//! Generators of the inputs the properties try: text, numbers, attribute
//! values and whole stream records, both as DynamoDB sends them and as
//! anything the SDK's types can hold.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{
    AttributeValue, Identity, OperationType, Record, StreamRecord, StreamViewType,
};
use aws_smithy_types::{Blob, DateTime};
use proptest::collection::{hash_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Characters that escaping gets wrong first: JSON's and HTML's specials,
/// controls, the line and paragraph separators and their neighbours (the
/// same lead byte), multi-byte and astral characters, and the subject's
/// separators.
pub const ODD_CHARS: &[char] = &[
    '"',
    '\\',
    '/',
    '<',
    '>',
    '&',
    '\n',
    '\r',
    '\t',
    '\u{0}',
    '\u{1}',
    '\u{8}',
    '\u{c}',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{2027}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '€',
    'é',
    '日',
    '🎉',
    '\u{feff}',
    '\u{fffd}',
    '\u{10ffff}',
    ' ',
    '%',
    ',',
    '=',
    'a',
    '0',
];

/// Any text: empty, plain, odd characters, arbitrary Unicode, and long.
pub fn odd_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => vec(select(ODD_CHARS), 0..12).prop_map(|chars| chars.into_iter().collect()),
        2 => any::<String>(),
        2 => "[a-zA-Z0-9_.-]{0,12}",
        1 => Just(String::new()),
        1 => (1usize..4_000, select(ODD_CHARS))
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

/// Binary values: empty, short and a few kilobytes, every byte value.
pub fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..16),
        1 => vec(any::<u8>(), 0..3_000),
    ]
    .boxed()
}

/// `-`, `+` or nothing.
fn sign() -> impl Strategy<Value = &'static str> {
    select(&["", "", "-", "+"][..])
}

/// 1 to 38 significant digits, the first not zero.
const SIGNIFICANT: &str = "[1-9][0-9]{0,37}";

/// Numbers as DynamoDB may write them: up to 38 significant digits,
/// magnitudes from 1E-130 to 9.99…E+125, and the forms it accepts that JSON
/// does not (`+5`, `.5`, `5.`, `007`).
pub fn dynamodb_number() -> BoxedStrategy<String> {
    prop_oneof![
        // Integers up to 126 digits, sometimes with leading zeros.
        (sign(), "0{0,3}", SIGNIFICANT, 0usize..=88)
            .prop_map(|(s, lead, d, zeros)| format!("{s}{lead}{d}{}", "0".repeat(zeros))),
        // A point anywhere in the digits, trailing zeros sometimes.
        (sign(), "0{0,2}", SIGNIFICANT, any::<Index>(), "0{0,2}").prop_map(
            |(s, lead, d, at, trail)| {
                let at = at.index(d.len() + 1);
                format!("{s}{lead}{}.{}{trail}", &d[..at], &d[at..])
            }
        ),
        // Tiny: down to 1E-130 written out.
        (sign(), 0usize..=92, SIGNIFICANT)
            .prop_map(|(s, zeros, d)| format!("{s}0.{}{d}", "0".repeat(zeros))),
        // Scientific, the exponent within DynamoDB's range.
        (
            sign(),
            "[1-9]",
            "[0-9]{0,37}",
            select(&["e", "E"][..]),
            -130i32..=125,
            any::<bool>()
        )
            .prop_map(|(s, lead, rest, e, exp, plus)| {
                let point = if rest.is_empty() { "" } else { "." };
                let exp_sign = if exp >= 0 && plus { "+" } else { "" };
                format!("{s}{lead}{point}{rest}{e}{exp_sign}{exp}")
            }),
        select(
            &[
                "0",
                "-0",
                "0.0",
                "+5",
                ".5",
                "-.5",
                "5.",
                "007",
                "00.00100",
                "1E-130",
                "-1E-130",
                "9.9999999999999999999999999999999999999E+125",
                "-9.9999999999999999999999999999999999999E+125",
                "12345678901234567890123456789012345678",
                "0.000000000000000000000000000000000000001",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// What an `N` may hold when it did not come from DynamoDB: its numbers,
/// number-like text out of its range or form, and any text at all.
pub fn number_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => dynamodb_number(),
        1 => odd_string(),
        1 => select(
            &[
                "", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "NaN", "Infinity",
                "-Infinity", " 1", "1 ", "1_000", "١", "--1", "1e999", "-1e999", "1e-999",
                "1E+400", "1e99999999999999999999", "1e-99999999999999999999",
            ][..]
        )
        .prop_map(str::to_owned),
        // Number-shaped, with any number of digits and any exponent.
        1 => (
            select(&["", "-", "+"][..]),
            "[0-9]{0,50}",
            option::of("[0-9]{0,50}"),
            option::of((select(&["e", "E"][..]), select(&["", "-", "+"][..]), "[0-9]{1,25}")),
        )
            .prop_map(|(s, int, frac, exp)| {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                let exp = exp.map(|(e, s, d)| format!("{e}{s}{d}")).unwrap_or_default();
                format!("{s}{int}{frac}{exp}")
            }),
    ]
    .boxed()
}

/// One attribute value that holds no other.
fn scalar(numbers: BoxedStrategy<String>) -> BoxedStrategy<AttributeValue> {
    prop_oneof![
        odd_string().prop_map(AttributeValue::S),
        numbers.clone().prop_map(AttributeValue::N),
        bytes().prop_map(|b| AttributeValue::B(Blob::new(b))),
        any::<bool>().prop_map(AttributeValue::Bool),
        // DynamoDB's NULL is always true; false must not break anything.
        any::<bool>().prop_map(AttributeValue::Null),
        vec(odd_string(), 0..4).prop_map(AttributeValue::Ss),
        vec(numbers, 0..4).prop_map(AttributeValue::Ns),
        vec(bytes(), 0..4)
            .prop_map(|all| AttributeValue::Bs(all.into_iter().map(Blob::new).collect())),
    ]
    .boxed()
}

/// Any attribute value, its numbers drawn from `numbers`: lists and maps
/// nested a few levels wide, or a chain as deep as DynamoDB allows (32).
pub fn attribute_value(numbers: BoxedStrategy<String>) -> BoxedStrategy<AttributeValue> {
    let leaf = scalar(numbers);
    let wide = leaf.clone().prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            hash_map(odd_string(), inner, 0..4).prop_map(AttributeValue::M),
        ]
    });
    let deep = (leaf, vec((any::<bool>(), odd_string()), 0..=32)).prop_map(|(leaf, levels)| {
        levels.into_iter().fold(leaf, |inner, (list, name)| {
            if list {
                AttributeValue::L(vec![inner])
            } else {
                AttributeValue::M(HashMap::from([(name, inner)]))
            }
        })
    });
    prop_oneof![4 => wide, 1 => deep].boxed()
}

/// An item: attributes by name.
pub fn item(numbers: BoxedStrategy<String>) -> BoxedStrategy<HashMap<String, AttributeValue>> {
    hash_map(odd_string(), attribute_value(numbers), 0..6).boxed()
}

/// Any instant a `DateTime` holds, the extremes included.
pub fn any_date_time() -> BoxedStrategy<DateTime> {
    let secs = prop_oneof![
        2 => any::<i64>(),
        // Years -9999 to 9999 (what the time crate holds), and a little
        // on each side of years 0 and 9999.
        2 => -377_800_000_000i64..=253_500_000_000,
        1 => -62_300_000_000i64..=-62_100_000_000,
        1 => 253_400_000_000i64..=253_405_000_000,
        1 => select(&[i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX][..]),
    ];
    let nanos = prop_oneof![
        2 => 0u32..1_000_000_000,
        1 => select(&[0u32, 1, 499_999, 500_000, 999_999_499, 999_999_500, 999_999_999][..]),
    ];
    (secs, nanos)
        .prop_map(|(secs, nanos)| DateTime::from_secs_and_nanos(secs, nanos))
        .boxed()
}

fn any_operation() -> BoxedStrategy<OperationType> {
    prop_oneof![
        3 => dynamodb_operation(),
        1 => odd_string().prop_map(|s| OperationType::from(s.as_str())),
    ]
    .boxed()
}

/// The three operations DynamoDB sends (the schemas refuse any other).
fn dynamodb_operation() -> impl Strategy<Value = OperationType> {
    select(
        &[
            OperationType::Insert,
            OperationType::Modify,
            OperationType::Remove,
        ][..],
    )
}

fn dynamodb_view_type() -> impl Strategy<Value = StreamViewType> {
    select(
        &[
            StreamViewType::KeysOnly,
            StreamViewType::NewImage,
            StreamViewType::OldImage,
            StreamViewType::NewAndOldImages,
        ][..],
    )
}

fn any_view_type() -> BoxedStrategy<StreamViewType> {
    prop_oneof![
        3 => dynamodb_view_type(),
        1 => odd_string().prop_map(|s| StreamViewType::from(s.as_str())),
    ]
    .boxed()
}

/// Sequence numbers as DynamoDB writes them (21 to 40 digits), the edges of
/// what the source accepts (1 to 40 digits), and anything else.
pub fn any_sequence_number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[1-9][0-9]{20,39}",
        1 => "[0-9]{1,40}",
        1 => "[0-9]{41,45}",
        1 => odd_string(),
    ]
    .boxed()
}

fn any_identity() -> BoxedStrategy<Identity> {
    (option::of(odd_string()), option::of(odd_string()))
        .prop_map(|(principal, kind)| {
            Identity::builder()
                .set_principal_id(principal)
                .set_type(kind)
                .build()
        })
        .boxed()
}

/// Any record the SDK's types can hold: every member may be missing, and
/// each may hold anything its type allows.
pub fn any_record() -> BoxedStrategy<Record> {
    let numbers = number_text();
    let stream_record = (
        option::of(any_date_time()),
        option::of(item(numbers.clone())),
        option::of(item(numbers.clone())),
        option::of(item(numbers)),
        option::of(any_sequence_number()),
        option::of(any::<i64>()),
        option::of(any_view_type()),
    )
        .prop_map(|(created, keys, new, old, sequence, size, view)| {
            StreamRecord::builder()
                .set_approximate_creation_date_time(created)
                .set_keys(keys)
                .set_new_image(new)
                .set_old_image(old)
                .set_sequence_number(sequence)
                .set_size_bytes(size)
                .set_stream_view_type(view)
                .build()
        });
    (
        option::of(odd_string()),
        option::of(any_operation()),
        option::of(odd_string()),
        option::of(odd_string()),
        option::of(odd_string()),
        option::of(stream_record),
        option::of(any_identity()),
    )
        .prop_map(
            |(id, operation, version, source, region, dynamodb, identity)| {
                Record::builder()
                    .set_event_id(id)
                    .set_event_name(operation)
                    .set_event_version(version)
                    .set_event_source(source)
                    .set_aws_region(region)
                    .set_dynamodb(dynamodb)
                    .set_user_identity(identity)
                    .build()
            },
        )
        .boxed()
}

/// A record as DynamoDB Streams sends it: every member it always carries,
/// one or two key attributes (S, N or B), images as the view type allows,
/// numbers in DynamoDB's range, a creation time in whole seconds or
/// milliseconds parsed as the SDK does, and TTL deletes' identity. Text is
/// still anything: DynamoDB stores any Unicode.
pub fn dynamodb_record() -> BoxedStrategy<Record> {
    let numbers = dynamodb_number();
    let key_value = prop_oneof![
        odd_string()
            .prop_filter("keys are not empty", |s| !s.is_empty())
            .prop_map(AttributeValue::S),
        numbers.clone().prop_map(AttributeValue::N),
        vec(any::<u8>(), 1..32).prop_map(|b| AttributeValue::B(Blob::new(b))),
    ];
    let keys = hash_map(
        odd_string().prop_filter("names are not empty", |s| !s.is_empty()),
        key_value,
        1..=2,
    );
    // The SDK reads the wire's epoch seconds as an f64.
    let created = (0i64..=253_402_300_799, prop_oneof![Just(0u32), 0u32..1000])
        .prop_map(|(secs, millis)| DateTime::from_secs_f64(secs as f64 + f64::from(millis) / 1e3));
    let ttl = Identity::builder()
        .principal_id("dynamodb.amazonaws.com")
        .r#type("Service")
        .build();
    let stream_record = (
        created,
        keys,
        option::of(item(numbers.clone())),
        option::of(item(numbers)),
        "[1-9][0-9]{20,39}",
        0i64..=409_600,
        dynamodb_view_type(),
    )
        .prop_map(|(created, keys, new, old, sequence, size, view)| {
            StreamRecord::builder()
                .approximate_creation_date_time(created)
                .set_keys(Some(keys))
                .set_new_image(new)
                .set_old_image(old)
                .sequence_number(sequence)
                .size_bytes(size)
                .stream_view_type(view)
                .build()
        });
    (
        "[0-9a-f]{32}",
        dynamodb_operation(),
        select(&["us-east-1", "eu-west-3", "ap-southeast-2", "ddblocal"][..]),
        stream_record,
        option::weighted(0.2, Just(ttl)),
    )
        .prop_map(|(id, operation, region, dynamodb, identity)| {
            Record::builder()
                .event_id(id)
                .event_name(operation)
                .event_version("1.1")
                .event_source("aws:dynamodb")
                .aws_region(region)
                .dynamodb(dynamodb)
                .set_user_identity(identity)
                .build()
        })
        .boxed()
}

/// `record` with its sequence number set to one the source accepts.
pub fn with_sequence(mut record: Record, sequence: &str) -> Record {
    let dynamodb = record
        .dynamodb
        .get_or_insert_with(|| StreamRecord::builder().build());
    dynamodb.sequence_number = Some(sequence.to_owned());
    record
}
