//! Behaviour of FILTER on records in the "aws" shape.

use serde_json::{Value, json};

use super::RecordFilter;

/// A NEW_IMAGE INSERT as Lambda delivers it, with attributes of every kind
/// the tests filter on.
fn record() -> Value {
    json!({
        "eventID": "e1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1700000000,
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {
                "pk": {"S": "a"},
                "price": {"N": "12.5"},
                "tags": {"SS": ["x", "y"]},
                "nums": {"NS": ["1", "20", "300"]},
                "status": {"S": "active"},
                "file": {"S": "photo.png"},
                "active": {"BOOL": true},
                "big": {"N": "12345678901234567890123456789012345678"},
                "nines": {"N": "99999999999999999999999999999999999999"},
                "neg": {"N": "-0.5"},
                "items": {"L": [
                    {"M": {"sku": {"S": "a"}, "qty": {"N": "1"}}},
                    {"M": {"sku": {"S": "b"}, "qty": {"N": "5"}}}
                ]}
            },
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_IMAGE"
        },
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
    })
}

/// `record` with the value at JSON pointer `at` set (its parent must exist).
fn with(mut record: Value, at: &str, value: Value) -> Value {
    let (parent, key) = at.rsplit_once('/').expect("pointer");
    record
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.to_owned(), value);
    record
}

/// `record` without the value at JSON pointer `at`.
fn without(mut record: Value, at: &str) -> Value {
    let (parent, key) = at.rsplit_once('/').expect("pointer");
    let removed = record
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(key));
    assert!(removed.is_some(), "nothing at {at}");
    record
}

fn filter(json: &str) -> RecordFilter {
    RecordFilter::parse(json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

fn pass(json: &str, record: &Value) -> bool {
    filter(json).matches(record)
}

/// Asserts each `(filter, passes)` against `record`, naming the failing one.
fn check(record: &Value, cases: &[(&str, bool)]) {
    for (json, want) in cases {
        assert_eq!(pass(json, record), *want, "{json}");
    }
}

// ------------------------------------------------ the reference table, row by row

#[test]
fn row_literal_string_is_exact_and_case_sensitive() {
    check(
        &record(),
        &[
            (r#"[{"eventName": ["INSERT"]}]"#, true),
            (r#"[{"eventName": ["insert"]}]"#, false),
            (r#"[{"eventName": ["INSERTX"]}]"#, false),
            (r#"[{"eventName": ["INSERT "]}]"#, false),
        ],
    );
}

#[test]
fn row_literal_number_equals_by_value_including_n_strings() {
    check(
        &record(),
        &[
            (r#"[{"dynamodb": {"SizeBytes": [26]}}]"#, true),
            (r#"[{"dynamodb": {"SizeBytes": [26.0]}}]"#, true),
            (r#"[{"dynamodb": {"SizeBytes": [25]}}]"#, false),
            (r#"[{"dynamodb": {"SizeBytes": ["26"]}}]"#, false),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [12.5]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [12.50]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [125e-1]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [12]}}}}]"#,
                false,
            ),
            // A pattern string is compared as a string, even against N.
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": ["12.5"]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": ["12.50"]}}}}]"#,
                false,
            ),
            // A number never equals a non-numeric string.
            (r#"[{"eventName": [0]}]"#, false),
        ],
    );
}

#[test]
fn row_literal_boolean() {
    check(
        &record(),
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"active": {"BOOL": [true]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"active": {"BOOL": [false]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"active": {"BOOL": ["true"]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"active": {"BOOL": [1]}}}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn row_literal_null_matches_a_null_value_only() {
    let null = with(record(), "/userIdentity", Value::Null);
    check(
        &null,
        &[
            (r#"[{"userIdentity": [null]}]"#, true),
            (r#"[{"userIdentity": ["null"]}]"#, false),
        ],
    );
    // An object is not null, and neither is an absent field.
    assert!(!pass(r#"[{"userIdentity": [null]}]"#, &record()));
    let absent = without(record(), "/userIdentity");
    assert!(!pass(r#"[{"userIdentity": [null]}]"#, &absent));
}

#[test]
fn row_prefix_and_suffix_on_strings_only() {
    check(
        &record(),
        &[
            (
                r#"[{"eventSourceARN": [{"prefix": "arn:aws:dynamodb:us-east-1:"}]}]"#,
                true,
            ),
            (
                r#"[{"eventSourceARN": [{"prefix": "arn:aws:dynamodb:eu-"}]}]"#,
                false,
            ),
            (r#"[{"eventSourceARN": [{"prefix": "ARN:"}]}]"#, false),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"suffix": ".png"}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"suffix": ".PNG"}]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"suffix": ".jpg"}]}}}}]"#,
                false,
            ),
            // 26 is a number, not the string "26".
            (r#"[{"dynamodb": {"SizeBytes": [{"prefix": "2"}]}}]"#, false),
            // With equals-ignore-case inside.
            (
                r#"[{"eventName": [{"prefix": {"equals-ignore-case": "ins"}}]}]"#,
                true,
            ),
            (
                r#"[{"eventName": [{"prefix": {"equals-ignore-case": "mod"}}]}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"suffix": {"equals-ignore-case": ".PNG"}}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"suffix": {"equals-ignore-case": ".GIF"}}]}}}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn row_equals_ignore_case() {
    check(
        &record(),
        &[
            (
                r#"[{"eventName": [{"equals-ignore-case": "insert"}]}]"#,
                true,
            ),
            (
                r#"[{"eventName": [{"equals-ignore-case": "InSeRt"}]}]"#,
                true,
            ),
            (
                r#"[{"eventName": [{"equals-ignore-case": "inser"}]}]"#,
                false,
            ),
            (
                r#"[{"eventName": [{"equals-ignore-case": "insertt"}]}]"#,
                false,
            ),
            (
                r#"[{"eventName": [{"equals-ignore-case": "modify"}]}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"SizeBytes": [{"equals-ignore-case": "26"}]}}]"#,
                false,
            ),
        ],
    );
    let accented = with(record(), "/eventName", json!("Été"));
    assert!(pass(
        r#"[{"eventName": [{"equals-ignore-case": "ÉTÉ"}]}]"#,
        &accented
    ));
}

#[test]
fn row_anything_but_list_single_prefix_suffix() {
    check(
        &record(),
        &[
            (
                r#"[{"eventName": [{"anything-but": ["MODIFY", "REMOVE"]}]}]"#,
                true,
            ),
            (
                r#"[{"eventName": [{"anything-but": ["REMOVE", "INSERT"]}]}]"#,
                false,
            ),
            (r#"[{"eventName": [{"anything-but": "REMOVE"}]}]"#, true),
            (r#"[{"eventName": [{"anything-but": "INSERT"}]}]"#, false),
            (
                r#"[{"eventSourceARN": [{"anything-but": {"prefix": "arn:aws:dynamodb:us-east-1:"}}]}]"#,
                false,
            ),
            (
                r#"[{"eventSourceARN": [{"anything-but": {"prefix": "arn:aws-cn:"}}]}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"anything-but": {"suffix": ".png"}}]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"file": {"S": [{"anything-but": {"suffix": ".jpg"}}]}}}}]"#,
                true,
            ),
            (
                r#"[{"eventName": [{"anything-but": {"equals-ignore-case": ["insert", "modify"]}}]}]"#,
                false,
            ),
            (
                r#"[{"eventName": [{"anything-but": {"equals-ignore-case": "remove"}}]}]"#,
                true,
            ),
            // Numbers compare by value, N strings included.
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [{"anything-but": [12.50]}]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [{"anything-but": [13]}]}}}}]"#,
                true,
            ),
            // An absent field is not "anything but x".
            (r#"[{"noSuchField": [{"anything-but": ["x"]}]}]"#, false),
        ],
    );
}

#[test]
fn row_numeric_ranges_and_equality() {
    let price = |range: &str| {
        format!(
            r#"[{{"dynamodb": {{"NewImage": {{"price": {{"N": [{{"numeric": {range}}}]}}}}}}}}]"#
        )
    };
    let record = record();
    for (range, want) in [
        (r#"[">", 0, "<=", 12.5]"#, true),
        (r#"[">", 0, "<", 12.5]"#, false),
        (r#"[">=", 12.5]"#, true),
        (r#"[">", 12.5]"#, false),
        (r#"["<=", 12.5]"#, true),
        (r#"["<", 12.5]"#, false),
        (r#"["<", 12.51]"#, true),
        (r#"["=", 12.5]"#, true),
        (r#"["=", 12.50]"#, true),
        (r#"["=", 12.51]"#, false),
        (r#"[">=", 12.5, "<=", 12.5]"#, true),
        (
            r#"[">", 12.4999999999999999999, "<", 12.5000000000000000001]"#,
            true,
        ),
    ] {
        assert_eq!(pass(&price(range), &record), want, "{range}");
    }
    check(
        &record,
        &[
            (
                r#"[{"dynamodb": {"SizeBytes": [{"numeric": [">", 25, "<", 27]}]}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"SizeBytes": [{"numeric": [">=", 27]}]}}]"#,
                false,
            ),
            // Not a number at all.
            (r#"[{"eventName": [{"numeric": [">", 0]}]}]"#, false),
            (r#"[{"userIdentity": [{"numeric": [">", 0]}]}]"#, false),
        ],
    );
}

#[test]
fn row_exists_true_and_false() {
    let record = record();
    let no_identity = without(record.clone(), "/userIdentity");
    check(
        &record,
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [{"exists": true}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"price": {"N": [{"exists": false}]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"gone": {"N": [{"exists": true}]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"gone": {"N": [{"exists": false}]}}}}]"#,
                true,
            ),
            // Present objects exist too (a documented widening of EventBridge).
            (r#"[{"userIdentity": [{"exists": true}]}]"#, true),
            (r#"[{"userIdentity": [{"exists": false}]}]"#, false),
        ],
    );
    check(
        &no_identity,
        &[
            (r#"[{"userIdentity": [{"exists": true}]}]"#, false),
            (r#"[{"userIdentity": [{"exists": false}]}]"#, true),
        ],
    );
}

#[test]
fn row_several_conditions_match_when_any_does() {
    check(
        &record(),
        &[
            (r#"[{"eventName": ["REMOVE", {"prefix": "INS"}]}]"#, true),
            (r#"[{"eventName": ["REMOVE", {"prefix": "MOD"}]}]"#, false),
            (r#"[{"eventName": ["MODIFY", "INSERT"]}]"#, true),
        ],
    );
}

// ------------------------------------------------------------ DynamoDB uses

#[test]
fn nested_pattern_on_new_image_string_attribute() {
    check(
        &record(),
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"status": {"S": ["active"]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"status": {"S": ["inactive"]}}}}]"#,
                false,
            ),
            // The type key is part of the path: S is not N.
            (
                r#"[{"dynamodb": {"NewImage": {"status": {"N": ["active"]}}}}]"#,
                false,
            ),
            // Every key must match.
            (
                r#"[{"dynamodb": {"NewImage": {"status": {"S": ["active"]}, "pk": {"S": ["a"]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"status": {"S": ["active"]}, "pk": {"S": ["b"]}}}}]"#,
                false,
            ),
            (
                r#"[{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["inactive"]}}}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn event_name_insert_or_modify() {
    let f = filter(r#"[{"eventName": ["INSERT", "MODIFY"]}]"#);
    for (name, want) in [("INSERT", true), ("MODIFY", true), ("REMOVE", false)] {
        let r = with(record(), "/eventName", json!(name));
        assert_eq!(f.matches(&r), want, "{name}");
    }
}

#[test]
fn numeric_on_38_digit_n_strings_is_exact() {
    let big =
        |cond: &str| format!(r#"[{{"dynamodb": {{"NewImage": {{"big": {{"N": [{cond}]}}}}}}}}]"#);
    let record = record();
    for (cond, want) in [
        (
            r#"{"numeric": ["=", 12345678901234567890123456789012345678]}"#,
            true,
        ),
        (
            r#"{"numeric": ["=", 12345678901234567890123456789012345679]}"#,
            false,
        ),
        (
            r#"{"numeric": [">", 12345678901234567890123456789012345677]}"#,
            true,
        ),
        (
            r#"{"numeric": [">", 12345678901234567890123456789012345678]}"#,
            false,
        ),
        (
            r#"{"numeric": [">=", 12345678901234567890123456789012345678]}"#,
            true,
        ),
        (
            r#"{"numeric": ["<", 12345678901234567890123456789012345679]}"#,
            true,
        ),
        (
            r#"{"numeric": ["<", 12345678901234567890123456789012345678]}"#,
            false,
        ),
        ("12345678901234567890123456789012345678", true),
        ("12345678901234567890123456789012345679", false),
        (
            r#"{"anything-but": [12345678901234567890123456789012345679]}"#,
            true,
        ),
    ] {
        assert_eq!(pass(&big(cond), &record), want, "{cond}");
    }
    check(
        &record,
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"nines": {"N": [{"numeric": ["<", 1e38]}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"nines": {"N": [{"numeric": ["<", 99999999999999999999999999999999999999]}]}}}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn numeric_on_negative_decimal_n_strings_and_boundaries() {
    let neg = |range: &str| {
        format!(r#"[{{"dynamodb": {{"NewImage": {{"neg": {{"N": [{{"numeric": {range}}}]}}}}}}}}]"#)
    };
    let record = record();
    for (range, want) in [
        (r#"["<", 0]"#, true),
        (r#"[">", 0]"#, false),
        (r#"[">", -1, "<", -0.25]"#, true),
        (r#"[">", -0.5]"#, false),
        (r#"[">=", -0.5]"#, true),
        (r#"["<", -0.5]"#, false),
        (r#"["<=", -0.5]"#, true),
        (r#"["=", -0.50]"#, true),
        (r#"[">", -0.50001]"#, true),
        (r#"[">", -0.5, "<=", 0]"#, false),
        (r#"[">=", -0.5, "<", 0]"#, true),
    ] {
        assert_eq!(pass(&neg(range), &record), want, "{range}");
    }
}

#[test]
fn exists_under_a_missing_parent() {
    // A NEW_IMAGE record has no OldImage at all.
    let record = record();
    check(
        &record,
        &[
            (
                r#"[{"dynamodb": {"OldImage": {"pk": {"S": [{"exists": false}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"OldImage": {"pk": {"S": [{"exists": true}]}}}}]"#,
                false,
            ),
            // Under a parent that is a string, nothing exists either.
            (r#"[{"eventName": {"x": [{"exists": false}]}}]"#, true),
            (r#"[{"eventName": {"x": [{"exists": true}]}}]"#, false),
        ],
    );
    let no_dynamodb = without(record, "/dynamodb");
    assert!(pass(
        r#"[{"dynamodb": {"NewImage": {"pk": {"S": [{"exists": false}]}}}}]"#,
        &no_dynamodb
    ));
    assert!(!pass(
        r#"[{"dynamodb": {"NewImage": {"pk": {"S": [{"exists": true}]}}}}]"#,
        &no_dynamodb
    ));
}

#[test]
fn or_at_top_and_nested_levels() {
    let record = record();
    let top = r#"[{"$or": [{"eventName": ["REMOVE"]}, {"dynamodb": {"NewImage": {"status": {"S": ["active"]}}}}]}]"#;
    assert!(pass(top, &record));
    let inactive = with(
        record.clone(),
        "/dynamodb/NewImage/status",
        json!({"S": "inactive"}),
    );
    assert!(!pass(top, &inactive));
    let removed = with(inactive, "/eventName", json!("REMOVE"));
    assert!(pass(top, &removed));

    check(
        &record,
        &[
            // $or is AND-ed with the level's other keys.
            (
                r#"[{"eventSource": ["aws:dynamodb"], "$or": [{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}]}]"#,
                true,
            ),
            (
                r#"[{"eventSource": ["aws:s3"], "$or": [{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}]}]"#,
                false,
            ),
            (
                r#"[{"eventSource": ["aws:dynamodb"], "$or": [{"eventName": ["REMOVE"]}, {"eventName": ["MODIFY"]}]}]"#,
                false,
            ),
            // Nested inside dynamodb.
            (
                r#"[{"dynamodb": {"$or": [{"Keys": {"pk": {"S": ["b"]}}}, {"Keys": {"pk": {"S": ["a"]}}}]}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"$or": [{"Keys": {"pk": {"S": ["b"]}}}, {"Keys": {"pk": {"S": ["c"]}}}]}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn sets_match_when_any_element_does() {
    check(
        &record(),
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": ["y"]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": ["z"]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": [{"prefix": "x"}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"nums": {"NS": [20]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"nums": {"NS": [21]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"nums": {"NS": [{"numeric": [">", 100]}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"nums": {"NS": [{"numeric": [">", 300]}]}}}}]"#,
                false,
            ),
            // EventBridge's rule: some element differs from "x".
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": [{"anything-but": "x"}]}}}}]"#,
                true,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": [{"anything-but": ["x", "y"]}]}}}}]"#,
                false,
            ),
        ],
    );
    // An empty set is still a present attribute, but no element matches.
    let empty = with(record(), "/dynamodb/NewImage/tags", json!({"SS": []}));
    check(
        &empty,
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": ["x"]}}}}]"#,
                false,
            ),
            (
                r#"[{"dynamodb": {"NewImage": {"tags": {"SS": [{"exists": true}]}}}}]"#,
                true,
            ),
        ],
    );
}

#[test]
fn list_of_maps_matches_one_element_as_a_whole() {
    check(
        &record(),
        &[
            (
                r#"[{"dynamodb": {"NewImage": {"items": {"L": {"M": {"sku": {"S": ["b"]}, "qty": {"N": [5]}}}}}}}]"#,
                true,
            ),
            // sku "a" and qty 5 exist, but not in the same element.
            (
                r#"[{"dynamodb": {"NewImage": {"items": {"L": {"M": {"sku": {"S": ["a"]}, "qty": {"N": [5]}}}}}}}]"#,
                false,
            ),
        ],
    );
}

#[test]
fn several_patterns_pass_when_any_matches() {
    let either = filter(r#"[{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}]"#);
    assert_eq!(either.len(), 2);
    assert!(!either.is_empty());
    assert!(either.matches(&record()));
    let neither = filter(r#"[{"eventName": ["REMOVE"]}, {"eventName": ["MODIFY"]}]"#);
    assert!(!neither.matches(&record()));
}

#[test]
fn ttl_deletes_by_user_identity() {
    let ttl = filter(
        r#"[{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}]"#,
    );
    let not_ttl = filter(r#"[{"userIdentity": [{"exists": false}]}]"#);
    let by_ttl = record();
    let by_user = without(record(), "/userIdentity");
    let by_other_service = with(
        record(),
        "/userIdentity/principalId",
        json!("other.amazonaws.com"),
    );
    assert!(ttl.matches(&by_ttl));
    assert!(!ttl.matches(&by_user));
    assert!(!ttl.matches(&by_other_service));
    assert!(!not_ttl.matches(&by_ttl));
    assert!(not_ttl.matches(&by_user));
}

#[test]
fn odd_records_are_judged_without_panicking() {
    let name = filter(r#"[{"eventName": ["INSERT"]}]"#);
    let absent = filter(r#"[{"eventName": [{"exists": false}]}]"#);
    for odd in [
        Value::Null,
        json!("INSERT"),
        json!(7),
        json!({"eventName": {"nested": "INSERT"}}),
        json!({"eventName": [[{"x": 1}]]}),
        json!({"eventName": []}),
    ] {
        assert!(!name.matches(&odd), "{odd}");
    }
    assert!(absent.matches(&Value::Null));
    assert!(!absent.matches(&json!({"eventName": null})));
    // Nested arrays are flattened like EventBridge does.
    assert!(name.matches(&json!({"eventName": [["REMOVE"], ["INSERT"]]})));
}

// ------------------------------------------------------------- parse errors

#[test]
fn parse_errors_name_the_place_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"eventName": ["INSERT"]}"#,
            r#"FILTER: must be a JSON array of patterns (wrap a single pattern in [ ]), got {"eventName": ["INSERT"]}"#,
        ),
        (
            "[]",
            "FILTER has no pattern; leave FILTER unset to pass every record",
        ),
        (
            r#"[{"eventName": ["INSERT"]}, "INSERT"]"#,
            r#"FILTER[1]: a pattern must be a JSON object mirroring the record, got "INSERT""#,
        ),
        (
            "[{}]",
            "FILTER[0]: is an empty object; a pattern level needs at least one field to match",
        ),
        (
            r#"[{"dynamodb": {}}]"#,
            "FILTER[0].dynamodb: is an empty object; a pattern level needs at least one field to match",
        ),
        (
            r#"[{"eventName": ["INSERT"], "eventName": ["MODIFY"]}]"#,
            "FILTER[0].eventName: appears twice in the same object; write each key once",
        ),
        (
            r#"[{"eventName": "INSERT"}]"#,
            r#"FILTER[0].eventName: must be an array of conditions (EventBridge requires arrays, e.g. ["INSERT"]), got "INSERT""#,
        ),
        (
            r#"[{"eventName": {"prefix": "IN"}}]"#,
            r#"FILTER[0].eventName.prefix: must be an array of conditions (EventBridge requires arrays, e.g. ["INSERT"]), got "IN"; if "prefix" is meant as a condition, write [{"prefix": "IN"}] in place of this object"#,
        ),
        (
            r#"[{"eventName": []}]"#,
            "FILTER[0].eventName: is an empty array; a leaf needs at least one condition",
        ),
        (
            r#"[{"eventName": [["INSERT"]]}]"#,
            r#"FILTER[0].eventName[0]: a condition must be a string, number, boolean, null or an operator object such as {"prefix": "a"}, got ["INSERT"]"#,
        ),
        (
            r#"[{"eventName": ["INSERT", {}]}]"#,
            "FILTER[0].eventName[1]: a condition object needs exactly one operator, got {}",
        ),
        (
            r#"[{"eventName": [{"prefix": "I", "suffix": "T"}]}]"#,
            r#"FILTER[0].eventName[0]: a condition object needs exactly one operator, got {"prefix": "I", "suffix": "T"}"#,
        ),
        (
            r#"[{"sourceIp": [{"cidr": "10.0.0.0/24"}]}]"#,
            r#"FILTER[0].sourceIp[0]: "cidr" is not supported (supported: prefix, suffix, equals-ignore-case, anything-but, numeric, exists)"#,
        ),
        (
            r#"[{"eventName": [{"wildcard": "IN*"}]}]"#,
            r#"FILTER[0].eventName[0]: "wildcard" is not supported (supported: prefix, suffix, equals-ignore-case, anything-but, numeric, exists)"#,
        ),
        (
            r#"[{"eventName": ["INSERT"]}, {"dynamodb": {"NewImage": {"price": {"N": [{"numeric": ["~", 3]}]}}}}]"#,
            r#"FILTER[1].dynamodb.NewImage.price.N[0]: "numeric" needs an operator and a number, got ["~", 3]"#,
        ),
        (
            r#"[{"n": [{"numeric": [">", "3"]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" needs an operator and a number, got [">", "3"]"#,
        ),
        (
            r#"[{"n": [{"numeric": [">"]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" needs an operator and a number, got [">"]"#,
        ),
        (
            r#"[{"n": [{"numeric": [">", 1, "<"]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" needs an operator and a number, got [">", 1, "<"]"#,
        ),
        (
            r#"[{"n": [{"numeric": 5}]}]"#,
            r#"FILTER[0].n[0]: "numeric" needs an operator and a number, got 5"#,
        ),
        (
            r#"[{"n": [{"numeric": ["<", 5, ">", 1]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" with two comparisons needs a lower bound (> or >=) then an upper bound (< or <=), got ["<", 5, ">", 1]"#,
        ),
        (
            r#"[{"n": [{"numeric": ["=", 1, "<", 5]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" with two comparisons needs a lower bound (> or >=) then an upper bound (< or <=), got ["=", 1, "<", 5]"#,
        ),
        (
            r#"[{"n": [{"numeric": [">", 5, "<", 3]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" range is empty, no number satisfies [">", 5, "<", 3]"#,
        ),
        (
            r#"[{"n": [{"numeric": [">", 5, "<=", 5.0]}]}]"#,
            r#"FILTER[0].n[0]: "numeric" range is empty, no number satisfies [">", 5, "<=", 5.0]"#,
        ),
        (
            r#"[{"s": [{"prefix": 5}]}]"#,
            r#"FILTER[0].s[0]: "prefix" needs a string or {"equals-ignore-case": "…"}, got 5"#,
        ),
        (
            r#"[{"s": [{"suffix": {"wildcard": "*.png"}}]}]"#,
            r#"FILTER[0].s[0]: "suffix" needs a string or {"equals-ignore-case": "…"}, got {"wildcard": "*.png"}"#,
        ),
        (
            r#"[{"s": [{"equals-ignore-case": ["a"]}]}]"#,
            r#"FILTER[0].s[0]: "equals-ignore-case" needs a string, got ["a"]"#,
        ),
        (
            r#"[{"dynamodb": {"NewImage": {"my attr": {"S": [{"exists": "yes"}]}}}}]"#,
            r#"FILTER[0].dynamodb.NewImage["my attr"].S[0]: "exists" needs true or false, got "yes""#,
        ),
        (
            r#"[{"s": [{"anything-but": []}]}]"#,
            r#"FILTER[0].s[0]: "anything-but" needs a value, a non-empty list of values, or one of {"prefix": …}, {"suffix": …}, {"equals-ignore-case": …}, got []"#,
        ),
        (
            r#"[{"s": [{"anything-but": [{"prefix": "a"}]}]}]"#,
            r#"FILTER[0].s[0]: "anything-but" needs a value, a non-empty list of values, or one of {"prefix": …}, {"suffix": …}, {"equals-ignore-case": …}, got [{"prefix": "a"}]"#,
        ),
        (
            r#"[{"s": [{"anything-but": {"wildcard": "a*"}}]}]"#,
            r#"FILTER[0].s[0]: "wildcard" is not supported inside "anything-but" (supported: a value, a list of values, prefix, suffix, equals-ignore-case)"#,
        ),
        (
            r#"[{"s": [{"anything-but": {"prefix": 1}}]}]"#,
            r#"FILTER[0].s[0]: "anything-but" needs a string or {"equals-ignore-case": "…"}, got {"prefix": 1}"#,
        ),
        (
            r#"[{"s": [{"anything-but": {"equals-ignore-case": [1]}}]}]"#,
            r#"FILTER[0].s[0]: "anything-but" needs {"equals-ignore-case": a string or a non-empty list of strings}, got {"equals-ignore-case": [1]}"#,
        ),
        (
            r#"[{"$or": {"eventName": ["INSERT"]}}]"#,
            r#"FILTER[0].$or: "$or" needs an array of at least two patterns, got {"eventName": ["INSERT"]}"#,
        ),
        (
            r#"[{"$or": [{"eventName": ["INSERT"]}]}]"#,
            r#"FILTER[0].$or: "$or" needs an array of at least two patterns, got [{"eventName": ["INSERT"]}]"#,
        ),
        (
            r#"[{"dynamodb": {"$or": [{"Keys": {"pk": {"S": ["a"]}}}, ["b"]]}}]"#,
            r#"FILTER[0].dynamodb.$or[1]: a pattern must be a JSON object mirroring the record, got ["b"]"#,
        ),
        (
            r#"[{"$or": [{"a": ["x"]}, {"b": [{"numeric": ["<", 1, ">", 0]}]}]}]"#,
            r#"FILTER[0].$or[1].b[0]: "numeric" with two comparisons needs a lower bound (> or >=) then an upper bound (< or <=), got ["<", 1, ">", 0]"#,
        ),
    ];
    for (json, want) in cases {
        let got = RecordFilter::parse(json).expect_err(json).to_string();
        assert_eq!(&got, want, "{json}");
        assert!(!got.contains('\n'), "{got}");
    }
}

#[test]
fn parse_error_for_text_that_is_not_json() {
    let e = RecordFilter::parse(r#"[{"eventName": ["INSERT"],}]"#).expect_err("trailing comma");
    assert_eq!(e.at(), "FILTER");
    let message = e.to_string();
    assert!(message.starts_with("FILTER: is not JSON: "), "{message}");
    assert!(message.contains("line 1 column"), "{message}");
}

#[test]
fn parse_error_shows_long_values_cut_short() {
    let long = format!(r#"[{{"eventName": "{}"}}]"#, "x".repeat(500));
    let message = RecordFilter::parse(&long)
        .expect_err("not an array")
        .to_string();
    assert!(message.ends_with("…"), "{message}");
    assert!(message.len() < 300, "{message}");
}

#[test]
fn a_single_point_range_is_accepted() {
    let f = filter(r#"[{"dynamodb": {"SizeBytes": [{"numeric": [">=", 26, "<=", 26]}]}}]"#);
    assert!(f.matches(&record()));
    let bigger = with(record(), "/dynamodb/SizeBytes", json!(27));
    assert!(!f.matches(&bigger));
}
