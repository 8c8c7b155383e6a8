//! Stream sequence numbers: decimal strings of 21 to 40 digits, compared as numbers.

use std::cmp::Ordering;

/// A sequence number that orders numerically and remembers how it was written (to format
/// neighbours with the same zero padding).
#[derive(Clone, Debug)]
pub(crate) struct SeqNo {
    /// Without leading zeros ("0" for zero). Non-digit input is kept as is and sorts by text.
    digits: String,
    /// The width of the original text (for zero padding).
    width: usize,
}

impl SeqNo {
    pub(crate) fn new(text: &str) -> SeqNo {
        let trimmed = text.trim_start_matches('0');
        let digits = if trimmed.is_empty() && !text.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        };
        SeqNo {
            digits,
            width: text.len(),
        }
    }

    /// The number as written with the original zero padding.
    pub(crate) fn padded(&self) -> String {
        format!("{:0>width$}", self.digits, width = self.width)
    }

    /// This number plus one, padded like this one.
    pub(crate) fn succ(&self) -> SeqNo {
        let mut bytes = self.digits.clone().into_bytes();
        let mut i = bytes.len();
        loop {
            if i == 0 {
                bytes.insert(0, b'1');
                break;
            }
            i -= 1;
            if bytes[i] == b'9' {
                bytes[i] = b'0';
            } else {
                bytes[i] += 1;
                break;
            }
        }
        let digits = String::from_utf8(bytes).expect("digits");
        SeqNo {
            width: self.width.max(digits.len()),
            digits,
        }
    }

    /// This number minus one (`None` for zero), padded like this one.
    pub(crate) fn pred(&self) -> Option<SeqNo> {
        if self.digits == "0" || self.digits.is_empty() {
            return None;
        }
        let mut bytes = self.digits.clone().into_bytes();
        let mut i = bytes.len();
        while i > 0 {
            i -= 1;
            if bytes[i] == b'0' {
                bytes[i] = b'9';
            } else {
                bytes[i] -= 1;
                break;
            }
        }
        let text = String::from_utf8(bytes).expect("digits");
        let trimmed = text.trim_start_matches('0');
        Some(SeqNo {
            digits: if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed.into()
            },
            width: self.width,
        })
    }
}

impl PartialEq for SeqNo {
    fn eq(&self, other: &Self) -> bool {
        self.digits == other.digits
    }
}

impl Eq for SeqNo {}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNo {
    fn cmp(&self, other: &Self) -> Ordering {
        self.digits
            .len()
            .cmp(&other.digits.len())
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

#[cfg(test)]
mod tests {
    use super::SeqNo;

    #[test]
    fn compares_as_numbers() {
        assert!(SeqNo::new("000000000000000000099") < SeqNo::new("100"));
        assert!(SeqNo::new("9") < SeqNo::new("0000000000000000000010"));
        assert_eq!(SeqNo::new("007"), SeqNo::new("7"));
        assert_eq!(SeqNo::new("000"), SeqNo::new("0"));
        let big = "1234567890123456789012345678901234567890";
        assert!(SeqNo::new(big) > SeqNo::new("999999999999999999999999999999999999999"));
    }

    #[test]
    fn neighbours_keep_padding() {
        assert_eq!(
            SeqNo::new("000000000000000000099").succ().padded(),
            "000000000000000000100"
        );
        assert_eq!(
            SeqNo::new("000000000000000000100").pred().unwrap().padded(),
            "000000000000000000099"
        );
        assert_eq!(SeqNo::new("999").succ().padded(), "1000");
        assert_eq!(SeqNo::new("1000").pred().unwrap().padded(), "0999");
        assert_eq!(SeqNo::new("0").pred(), None);
        assert_eq!(
            SeqNo::new("000000000000000000001").pred().unwrap().padded(),
            "000000000000000000000"
        );
    }
}
