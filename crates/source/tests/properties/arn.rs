//! The table ARN: any text is a `TableArn` that reads back as written, or
//! an error quoting the text and saying what is wrong.

use awsdynamodb_source::TableArn;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use crate::arbitrary::odd_string;
use crate::config;

/// The grammar the ARN's documentation states, written independently:
/// `arn:{partition}:dynamodb:{region}:{account}:table/{name}`, the
/// partition and region of lower-case letters, digits and `-`, a 12-digit
/// account, a name of 3 to 255 of `a-z A-Z 0-9 _ . -`.
fn is_table_arn(s: &str) -> bool {
    let lower = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let name = resource.strip_prefix("table/").unwrap_or_default();
    *arn == "arn"
        && lower(partition)
        && *service == "dynamodb"
        && lower(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Valid table ARNs, every part at its edges sometimes.
fn table_arn() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            select(&["aws", "aws-cn", "aws-us-gov", "aws-iso-b"][..]).prop_map(str::to_owned),
            "[a-z0-9-]{1,12}",
        ],
        prop_oneof![
            select(&["us-east-1", "eu-west-3", "ddblocal"][..]).prop_map(str::to_owned),
            "[a-z0-9-]{1,20}",
        ],
        "[0-9]{12}",
        prop_oneof!["[a-zA-Z0-9_.-]{3,20}", "[a-zA-Z0-9_.-]{250,255}"],
    )
        .prop_map(|(partition, region, account, table)| {
            format!("arn:{partition}:dynamodb:{region}:{account}:table/{table}")
        })
}

/// A valid ARN changed a little: a character inserted, removed or replaced,
/// the text cut, a stream suffix added, or a letter upper-cased.
fn near_table_arn() -> impl Strategy<Value = String> {
    let odd = select(
        &[
            ':', '/', '-', '_', '.', 'A', '0', ' ', '\n', 'é', '\u{0}', '🎉',
        ][..],
    );
    (table_arn(), any::<Index>(), 0u8..6, odd).prop_map(|(arn, at, how, c)| {
        let mut chars: Vec<char> = arn.chars().collect();
        let i = at.index(chars.len());
        match how {
            0 => chars.insert(i, c),
            1 => {
                chars.remove(i);
            }
            2 => chars[i] = c,
            3 => chars.truncate(i),
            4 => chars.extend("/stream/2024-01-01T00:00:00.000".chars()),
            _ => chars[i] = chars[i].to_ascii_uppercase(),
        }
        chars.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Every valid ARN is accepted and reads back as written, part by part.
    #[test]
    fn a_valid_arn_reads_back_as_written(text in table_arn()) {
        let arn: TableArn = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(arn.as_str(), text.as_str());
        prop_assert_eq!(arn.to_string(), text.clone());
        let rebuilt = format!(
            "arn:{}:dynamodb:{}:{}:table/{}",
            arn.partition(),
            arn.region(),
            arn.account(),
            arn.table()
        );
        prop_assert_eq!(rebuilt, text);
    }

    /// Any text, and above all text that is nearly an ARN: accepted exactly
    /// when the documented grammar says so; accepted text reads back as
    /// written; refused text gets one line that quotes it and says what to
    /// write instead.
    #[test]
    fn any_text_is_an_arn_or_an_error_quoting_it(
        text in prop_oneof![2 => near_table_arn(), 1 => odd_string(), 1 => "arn(:[a-z0-9/-]{0,14}){0,7}"],
    ) {
        match text.parse::<TableArn>() {
            Ok(arn) => {
                prop_assert!(is_table_arn(&text), "accepted {text:?}");
                prop_assert_eq!(arn.as_str(), text.as_str());
            }
            Err(e) => {
                prop_assert!(!is_table_arn(&text), "refused {text:?}: {e}");
                let message = e.to_string();
                prop_assert!(message.starts_with(&format!("invalid ARN {text:?}: ")), "{message}");
                prop_assert!(message.contains("arn:{partition}:dynamodb:"), "{message}");
                prop_assert!(!message.contains('\n'), "{message}");
            }
        }
    }
}
