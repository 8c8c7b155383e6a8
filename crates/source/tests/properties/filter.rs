//! FILTER: any text parses to a filter or to a one-line error naming where
//! in FILTER the problem is; a parsed filter judges any record, and judges
//! it as the pattern rules say.

use std::cmp::Ordering;

use awsdynamodb_source::test_support::RecordFilter;
use awsdynamodb_source::test_support::encode_aws;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value, json};

use crate::arbitrary::{any_record, dynamodb_number, odd_string};
use crate::config;

/// Keys that records have and patterns name.
const FIELDS: &[&str] = &[
    "eventName",
    "eventID",
    "dynamodb",
    "NewImage",
    "Keys",
    "SizeBytes",
    "pk",
    "price",
    "tags",
    "S",
    "N",
    "SS",
    "L",
    "M",
    "BOOL",
    "userIdentity",
    "type",
    "",
];

/// Operator names, and `$or`, so that generated JSON reaches every branch.
const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "$or",
    "wildcard",
];

/// Scalar values that records hold and patterns look for.
const VALUES: &[&str] = &[
    "INSERT",
    "MODIFY",
    "a",
    "A",
    "photo.png",
    "PHOTO.PNG",
    "Été",
    "été",
    "12.5",
    "-0.5",
    "0",
    "1E-130",
    "12345678901234567890123456789012345678",
    "",
    "<",
    ">=",
];

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// JSON number text, within what serde_json reads (no `1e400`): up to 38
/// digits, fractions, exponents down to E-139.
fn json_number() -> BoxedStrategy<String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,37})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2}|[eE]-1[0-3][0-9])?",
        select(
            &[
                "0",
                "-0",
                "0.0",
                "1E-130",
                "-1e-130",
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
                "9.9999999999999999999999999999999999999E+125",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
    .boxed()
}

fn word() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(FIELDS).prop_map(str::to_owned),
        2 => select(VALUES).prop_map(str::to_owned),
        2 => select(OPERATORS).prop_map(str::to_owned),
        1 => odd_string(),
    ]
    .boxed()
}

/// Any JSON text, in FILTER's vocabulary often enough to reach deep into
/// the parser: duplicate keys, empty arrays and objects, odd numbers.
fn json_text() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        select(&["null", "true", "false", "[]", "{}"][..]).prop_map(str::to_owned),
        json_number(),
        word().prop_map(|w| json_str(&w)),
    ];
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(","))),
            vec((word(), inner), 0..5).prop_map(|members| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}: {v}", json_str(k)))
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    })
    .boxed()
}

/// Text that is almost JSON: a JSON text with a character inserted,
/// removed or replaced.
fn near_json_text() -> BoxedStrategy<String> {
    (
        json_text(),
        any::<Index>(),
        0u8..3,
        select(
            &[
                '"', '\\', '[', '{', ':', ',', '-', 'e', '.', '9', 'é', '\u{0}',
            ][..],
        ),
    )
        .prop_map(|(text, at, how, c)| {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            match how {
                0 => chars.insert(i, c),
                _ if i == chars.len() => {}
                1 => {
                    chars.remove(i);
                }
                _ => chars[i] = c,
            }
            chars.into_iter().collect()
        })
        .boxed()
}

/// The checks on a refusal: one line, starting with where the problem is,
/// which is FILTER or a place inside it.
fn check_error(text: &str) -> Result<Option<RecordFilter>, TestCaseError> {
    match RecordFilter::parse(text) {
        Ok(filter) => Ok(Some(filter)),
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.contains('\n'), "two lines: {message}");
            prop_assert!(message.starts_with(e.at()), "{message}");
            let at = e.at();
            prop_assert!(
                at == "FILTER" || at.starts_with("FILTER["),
                "{at} is no place in FILTER"
            );
            Ok(None)
        }
    }
}

/// A record as the filter sees it: the `aws` shape of any record, or JSON
/// in the patterns' vocabulary (so that patterns do match sometimes).
fn record_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        select(VALUES).prop_map(Value::from),
        odd_string().prop_map(Value::from),
        dynamodb_number().prop_map(Value::from),
        json_number().prop_filter_map("within f64", |t| serde_json::from_str(&t).ok()),
    ];
    let value = leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(select(FIELDS).prop_map(str::to_owned), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let vocabulary = btree_map(select(FIELDS).prop_map(str::to_owned), value, 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()));
    let aws = any_record().prop_filter_map("deeper than serde_json reads", |record| {
        let mut out = Vec::new();
        encode_aws(&record, "arn:aws:dynamodb:x", &mut out);
        serde_json::from_slice(&out).ok()
    });
    prop_oneof![2 => vocabulary, 1 => aws].boxed()
}

/// A scalar condition's literal, as JSON text.
fn literal() -> BoxedStrategy<String> {
    prop_oneof![
        select(VALUES).prop_map(json_str),
        json_number(),
        select(&["true", "false", "null"][..]).prop_map(str::to_owned),
    ]
    .boxed()
}

/// One valid condition, as JSON text.
fn condition() -> BoxedStrategy<String> {
    let text = || select(VALUES).prop_map(json_str);
    prop_oneof![
        literal(),
        text().prop_map(|s| format!(r#"{{"prefix": {s}}}"#)),
        text().prop_map(|s| format!(r#"{{"suffix": {s}}}"#)),
        text().prop_map(|s| format!(r#"{{"prefix": {{"equals-ignore-case": {s}}}}}"#)),
        text().prop_map(|s| format!(r#"{{"equals-ignore-case": {s}}}"#)),
        any::<bool>().prop_map(|b| format!(r#"{{"exists": {b}}}"#)),
        literal().prop_map(|l| format!(r#"{{"anything-but": {l}}}"#)),
        vec(literal(), 1..3).prop_map(|l| format!(r#"{{"anything-but": [{}]}}"#, l.join(", "))),
        text().prop_map(|s| format!(r#"{{"anything-but": {{"suffix": {s}}}}}"#)),
        (select(&["=", "<", "<=", ">", ">="][..]), json_number())
            .prop_map(|(op, n)| format!(r#"{{"numeric": ["{op}", {n}]}}"#)),
        json_number().prop_map(|n| format!(r#"{{"numeric": [">=", {n}, "<=", {n}]}}"#)),
    ]
    .boxed()
}

/// One valid pattern, as JSON text: nested objects with leaves of one to
/// three conditions, sometimes an `$or` of two sub-patterns.
fn pattern() -> BoxedStrategy<String> {
    let leaf_array = vec(condition(), 1..4).prop_map(|c| format!("[{}]", c.join(", ")));
    let object = |node: BoxedStrategy<String>| {
        btree_map(select(FIELDS), node, 1..4).prop_map(|fields| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {v}", json_str(k)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        })
    };
    let flat = object(leaf_array.clone().boxed());
    flat.prop_recursive(3, 24, 3, move |inner| {
        let node = prop_oneof![leaf_array.clone(), inner.clone()].boxed();
        prop_oneof![
            3 => object(node),
            1 => (inner.clone(), inner.clone(), leaf_array.clone())
                .prop_map(|(a, b, leaf)| format!(r#"{{"$or": [{a}, {b}], "eventName": {leaf}}}"#)),
        ]
    })
    .boxed()
}

fn parsed(text: &str) -> Result<RecordFilter, TestCaseError> {
    RecordFilter::parse(text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text at all, JSON or nearly: a filter, or one line naming the
    /// place in FILTER that is wrong.
    #[test]
    fn any_text_is_a_filter_or_an_error_naming_the_place(
        text in prop_oneof![odd_string(), json_text(), near_json_text()],
        records in vec(record_json(), 1..3),
    ) {
        if let Some(filter) = check_error(&text)? {
            prop_assert!(!filter.is_empty());
            for record in &records {
                // The same verdict every time; above all, no panic.
                prop_assert_eq!(filter.matches(record), filter.matches(record));
            }
        }
    }

    /// Any JSON value as a pattern, or a list of them: a filter, or an error
    /// naming a place in FILTER; a value that is no array is refused at
    /// FILTER itself.
    #[test]
    fn any_json_pattern_is_a_filter_or_an_error_naming_the_place(
        patterns in vec(json_text(), 0..3),
        record in record_json(),
    ) {
        let text = format!("[{}]", patterns.join(", "));
        if let Some(filter) = check_error(&text)? {
            let _ = filter.matches(&record);
        }
        if let Some(first) = patterns.first().filter(|p| !p.starts_with('[')) {
            let err = RecordFilter::parse(first).err();
            prop_assert_eq!(err.as_ref().map(|e| e.at()), Some("FILTER"), "{}", first);
        }
    }

    /// Valid patterns parse, and the combinators mean what they say: a list
    /// of patterns passes what any of them passes, `$or` likewise, and two
    /// fields of one pattern must both match.
    #[test]
    fn patterns_combine_as_or_and_and(
        p in pattern(),
        q in pattern(),
        record in record_json(),
    ) {
        let one = parsed(&format!("[{p}]"))?.matches(&record);
        let other = parsed(&format!("[{q}]"))?.matches(&record);
        prop_assert_eq!(parsed(&format!("[{p}, {q}]"))?.matches(&record), one || other);
        prop_assert_eq!(
            parsed(&format!(r#"[{{"$or": [{p}, {q}]}}]"#))?.matches(&record),
            one || other
        );
        // Two keys of one pattern: both must match. (An absent `dynamodb`
        // can still match `exists: false` below it, and a list is matched
        // element by element: neither is a plain AND of the two filters.)
        if let Some(dynamodb) = record.get("dynamodb").filter(|d| !d.is_array()) {
            let both = format!(
                r#"[{{"eventName": [{{"exists": true}}], "dynamodb": {{"$or": [{p}, {q}]}}}}]"#
            );
            let inner = parsed(&format!("[{p}, {q}]"))?.matches(dynamodb);
            prop_assert_eq!(
                parsed(&both)?.matches(&record),
                record.get("eventName").is_some() && inner
            );
        }
    }

    /// A field exists or does not, never both; a present scalar equals a
    /// literal or is anything but it, never both.
    #[test]
    fn exists_and_anything_but_are_complements(
        field in select(FIELDS),
        value in literal(),
        record in record_json(),
    ) {
        let key = json_str(field);
        let exists = |b: bool| parsed(&format!(r#"[{{{key}: [{{"exists": {b}}}]}}]"#));
        prop_assert_ne!(exists(true)?.matches(&record), exists(false)?.matches(&record));
        let is = parsed(&format!("[{{{key}: [{value}]}}]"))?.matches(&record);
        let but = parsed(&format!(r#"[{{{key}: [{{"anything-but": {value}}}]}}]"#))?
            .matches(&record);
        match record.get(field) {
            Some(Value::Array(_) | Value::Object(_)) | None => {}
            Some(_) => prop_assert_ne!(is, but),
        }
    }
}

/// A decimal as generated: sign, digits (leading zeros allowed) and a power
/// of ten, so that its value is `±digits × 10^exp`.
#[derive(Debug, Clone)]
struct Decimal {
    negative: bool,
    digits: String,
    exp: i32,
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (any::<bool>(), "[0-9]{1,38}", -160i32..=80).prop_map(|(negative, digits, exp)| Decimal {
        negative,
        digits,
        exp,
    })
}

impl Decimal {
    /// The digits without leading zeros; `0` for zero.
    fn significant(&self) -> &str {
        let d = self.digits.trim_start_matches('0');
        if d.is_empty() { "0" } else { d }
    }

    fn is_zero(&self) -> bool {
        self.significant() == "0"
    }

    /// As a JSON number: `-123E-4`.
    fn json(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}{}E{}", self.significant(), self.exp)
    }

    /// As DynamoDB might write it, in one of several forms: the point
    /// moved anywhere within the digits (leading and trailing zeros kept),
    /// written out without exponent, `+` for positive.
    fn form(&self, which: usize, at: Index) -> String {
        let sign = match (self.negative, which % 2) {
            (true, _) => "-",
            (false, 0) => "",
            (false, _) => "+",
        };
        let d = &self.digits;
        match which % 3 {
            0 => format!("{sign}{d}e{}", self.exp),
            1 => {
                let k = at.index(d.len() + 1);
                let exp = i64::from(self.exp) + (d.len() - k) as i64;
                format!("{sign}{}.{}E{exp:+}", &d[..k], &d[k..])
            }
            _ if self.exp >= 0 => format!("{sign}{d}{}", "0".repeat(self.exp as usize)),
            _ => {
                let shift = self.exp.unsigned_abs() as usize;
                if shift < d.len() {
                    format!("{sign}{}.{}", &d[..d.len() - shift], &d[d.len() - shift..])
                } else {
                    format!("{sign}0.{}{d}", "0".repeat(shift - d.len()))
                }
            }
        }
    }

    /// Exact order: both scaled to the smaller exponent, then compared as
    /// integers.
    fn cmp(&self, other: &Decimal) -> Ordering {
        let sign = |d: &Decimal| match (d.is_zero(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (a, b) = (sign(self), sign(other));
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let low = self.exp.min(other.exp);
        let scaled =
            |d: &Decimal| format!("{}{}", d.significant(), "0".repeat((d.exp - low) as usize));
        let (x, y) = (scaled(self), scaled(other));
        let magnitude = x.len().cmp(&y.len()).then_with(|| x.cmp(&y));
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// `numeric` compares exactly, whatever form a record's number takes:
    /// 38 digits, tiny exponents, leading zeros, a leading `+`, a point
    /// anywhere. Each of the five operators agrees with exact arithmetic.
    #[test]
    fn numeric_conditions_compare_exactly(
        x in decimal(),
        y in decimal(),
        same in any::<bool>(),
        which in any::<usize>(),
        at in any::<Index>(),
    ) {
        // Half the time the bound is the record's own value, written
        // differently.
        let y = if same { Decimal { digits: format!("{}00", x.digits), exp: x.exp - 2, ..x.clone() } } else { y };
        let record = json!({"v": x.form(which, at)});
        let order = x.cmp(&y);
        for (op, want) in [
            ("=", order == Ordering::Equal),
            ("<", order == Ordering::Less),
            ("<=", order != Ordering::Greater),
            (">", order == Ordering::Greater),
            (">=", order != Ordering::Less),
        ] {
            let filter = parsed(&format!(r#"[{{"v": [{{"numeric": ["{op}", {}]}}]}}]"#, y.json()))?;
            prop_assert_eq!(filter.matches(&record), want, "{} {} {}", record["v"], op, y.json());
        }
    }
}
