//! Sequence numbers: decimal strings of 21 to 40 digits, ordered as numbers.

use std::cmp::Ordering;
use std::fmt;

/// A stream record's sequence number. Compares numerically (longer means
/// larger once leading zeros are gone), never as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SequenceNumber(String);

impl TryFrom<String> for SequenceNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SequenceNumber::parse(&s).ok_or_else(|| format!("{s:?} is not a sequence number"))
    }
}

impl From<SequenceNumber> for String {
    fn from(s: SequenceNumber) -> String {
        s.0
    }
}

impl SequenceNumber {
    /// Accepts 1 to 40 ASCII digits; anything else is not a sequence number.
    pub fn parse(s: &str) -> Option<Self> {
        (!s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| SequenceNumber(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn significant(&self) -> &str {
        let s = self.0.trim_start_matches('0');
        if s.is_empty() { "0" } else { s }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn orders_as_numbers_not_strings() {
        assert!(seq("900000000000000000000") < seq("1000000000000000000000"));
        assert!(seq("000000000000000000009") < seq("10"));
        assert_eq!(seq("0001").cmp(&seq("1")), Ordering::Equal);
        assert!(
            seq("9999999999999999999999999999999999999999")
                > seq("999999999999999999999999999999999999999")
        );
    }

    #[test]
    fn rejects_non_digits_and_overlong() {
        assert!(SequenceNumber::parse("").is_none());
        assert!(SequenceNumber::parse("12a").is_none());
        assert!(SequenceNumber::parse("-1").is_none());
        assert!(SequenceNumber::parse(&"1".repeat(41)).is_none());
        assert!(SequenceNumber::parse(&"1".repeat(40)).is_some());
    }
}
