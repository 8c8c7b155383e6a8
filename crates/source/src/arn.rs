//! Table ARNs: `arn:{partition}:dynamodb:{region}:{account}:table/{name}`.
//!
//! Owns parsing and validation of the one identifier a user gives us. It never
//! talks to AWS: whether the table exists is for stream discovery to find out.

use std::fmt;
use std::str::FromStr;

/// A validated DynamoDB table ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableArn {
    full: String,
    partition: String,
    region: String,
    account: String,
    table: String,
}

/// Why a string is not a table ARN. The message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid ARN {arn:?}: {reason} (expected arn:{{partition}}:dynamodb:{{region}}:{{account}}:table/{{name}})"
)]
pub struct ArnError {
    arn: String,
    reason: String,
}

impl TableArn {
    /// The ARN exactly as configured (it is the events' `source`).
    pub fn as_str(&self) -> &str {
        &self.full
    }
    pub fn partition(&self) -> &str {
        &self.partition
    }
    /// The region the table lives in; the adapter talks to this region only.
    pub fn region(&self) -> &str {
        &self.region
    }
    pub fn account(&self) -> &str {
        &self.account
    }
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl FromStr for TableArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ArnError {
            arn: s.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = s.splitn(6, ':');
        let mut next = || parts.next().unwrap_or_default();
        let (prefix, partition, service, region, account, resource) =
            (next(), next(), next(), next(), next(), next());
        if prefix != "arn" {
            return Err(fail("it does not start with \"arn:\""));
        }
        if partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail("the partition is missing or malformed"));
        }
        if service != "dynamodb" {
            return Err(fail("the service is not \"dynamodb\""));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail("the region is missing or malformed"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("the account is not 12 digits"));
        }
        let Some(table) = resource.strip_prefix("table/") else {
            return Err(fail("the resource is not \"table/<name>\""));
        };
        // A stream's ARN is its table's plus "/stream/<label>": the table
        // is meant, but which stream is the adapter's to find (the newest).
        if let Some((table_part, _)) = table.split_once("/stream/") {
            let prefix = &s[..s.len() - resource.len()];
            return Err(fail(&format!(
                "it is a stream's ARN; give its table's ARN instead, {prefix}table/{table_part}"
            )));
        }
        // DynamoDB table names: 3 to 255 of [a-zA-Z0-9_.-].
        if !(3..=255).contains(&table.len())
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(fail(
                "the table name must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '.', '-'",
            ));
        }
        Ok(TableArn {
            full: s.to_owned(),
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            table: table.to_owned(),
        })
    }
}

impl fmt::Display for TableArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_partition_and_region_name() {
        for s in [
            "arn:aws:dynamodb:us-west-2:123456789012:table/triggermeshtest",
            "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t.1_x-y",
            "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/abc",
            "arn:aws-iso-b:dynamodb:us-isob-east-1:123456789012:table/abc",
            "arn:aws:dynamodb:ddblocal:000000000000:table/orders",
        ] {
            let arn: TableArn = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(arn.as_str(), s);
        }
        let arn: TableArn = "arn:aws:dynamodb:ddblocal:000000000000:table/orders"
            .parse()
            .unwrap();
        assert_eq!(
            (arn.partition(), arn.region(), arn.account(), arn.table()),
            ("aws", "ddblocal", "000000000000", "orders")
        );
    }

    #[test]
    fn rejects_what_is_not_a_table_arn_naming_the_problem() {
        let cases = [
            ("", "does not start"),
            ("table/orders", "does not start"),
            ("arn:aws:s3:us-east-1:123456789012:table/orders", "service"),
            ("arn:aws:dynamodb:us-east-1:12345:table/orders", "12 digits"),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:index/orders",
                "table/<name>",
            ),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/ab",
                "3 to 255",
            ),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000",
                "it is a stream's ARN; give its table's ARN instead, arn:aws:dynamodb:us-east-1:123456789012:table/orders ",
            ),
            ("arn:aws:dynamodb::123456789012:table/orders", "region"),
            (
                "arn:AWS:dynamodb:us-east-1:123456789012:table/orders",
                "partition",
            ),
            ("arn:aws:dynamodb:us-east-1:123456789012", "table/<name>"),
        ];
        for (s, needle) in cases {
            let err = s.parse::<TableArn>().expect_err(s).to_string();
            assert!(err.contains(needle), "{s}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
