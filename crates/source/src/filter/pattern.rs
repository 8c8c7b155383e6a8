//! One compiled EventBridge pattern and how it matches a record.
//!
//! Owns the pattern's compiled form (built, and checked, by
//! [`super::parse`]) and matching it against one record. Matching must never
//! fail or panic: it only walks the record with borrowed data and never
//! allocates (a JSON number in the record is rendered into a stack buffer to
//! compare it as a decimal).

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::Value;

use super::decimal::{self, Decimal, Parts};

/// An object level of a pattern: every field must match, and one of `or`
/// (when there is an `$or`) must match the same object.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) fields: Vec<(Box<str>, Node)>,
    pub(super) or: Vec<Pattern>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    /// An array of conditions: any one matches.
    Leaf(Vec<Cond>),
    Object(Pattern),
}

#[derive(Debug, Clone)]
pub(super) enum Cond {
    Exists(bool),
    Is(Literal),
    Prefix(Text),
    Suffix(Text),
    /// Lowercased (see [`lower`]).
    EqualsIgnoreCase(Box<str>),
    /// Scalar conditions (`Is`, `Prefix`, `Suffix`, `EqualsIgnoreCase`), none
    /// of which may match.
    AnythingBut(Vec<Cond>),
    Numeric {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Literal {
    Str(Box<str>),
    Num(Decimal),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone)]
pub(super) struct Text {
    /// Lowercased when `ignore_case`.
    pub(super) text: Box<str>,
    pub(super) ignore_case: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Bound {
    pub(super) value: Decimal,
    pub(super) inclusive: bool,
}

// ---------------------------------------------------------------- matching

impl Pattern {
    /// `value` is what the record holds where this pattern sits; `None` when
    /// it is absent (so `{"exists": false}` below can still match).
    pub(super) fn matches(&self, value: Option<&Value>) -> bool {
        match value {
            // A sub-pattern meeting an array (DynamoDB's `L` of maps) must
            // match one element as a whole, so that two fields of the pattern
            // cannot be satisfied by two different elements.
            Some(Value::Array(items)) if !items.is_empty() => {
                items.iter().any(|item| self.matches(Some(item)))
            }
            Some(Value::Array(_)) => self.matches_here(None),
            _ => self.matches_here(value),
        }
    }

    fn matches_here(&self, value: Option<&Value>) -> bool {
        let object = value.and_then(Value::as_object);
        self.fields.iter().all(|(key, node)| {
            let child = object.and_then(|o| o.get(&**key));
            match node {
                Node::Leaf(conds) => conds.iter().any(|c| c.matches(child)),
                Node::Object(pattern) => pattern.matches(child),
            }
        }) && (self.or.is_empty() || self.or.iter().any(|p| p.matches_here(value)))
    }
}

impl Cond {
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            // `exists` asks about the field, not its elements: an empty set
            // is still a present field.
            (Cond::Exists(want), _) => value.is_some() == *want,
            (_, None) => false,
            (_, Some(value)) => any_scalar(value, &|v| self.matches_scalar(v)),
        }
    }

    /// `value` is a string, number, boolean or null.
    fn matches_scalar(&self, value: &Value) -> bool {
        match self {
            Cond::Exists(want) => *want,
            Cond::Is(literal) => literal.equals(value),
            Cond::Prefix(t) => value.as_str().is_some_and(|s| t.is_prefix_of(s)),
            Cond::Suffix(t) => value.as_str().is_some_and(|s| t.is_suffix_of(s)),
            Cond::EqualsIgnoreCase(p) => value.as_str().is_some_and(|s| lower(s).eq(p.chars())),
            Cond::AnythingBut(excluded) => !excluded.iter().any(|c| c.matches_scalar(value)),
            Cond::Numeric { lower, upper } => with_decimal(value, |text, parts| {
                let above = |b: &Bound| match b.value.cmp_with(text, parts) {
                    Ordering::Less => true,
                    Ordering::Equal => b.inclusive,
                    Ordering::Greater => false,
                };
                let below = |b: &Bound| match b.value.cmp_with(text, parts) {
                    Ordering::Greater => true,
                    Ordering::Equal => b.inclusive,
                    Ordering::Less => false,
                };
                lower.as_ref().is_none_or(above) && upper.as_ref().is_none_or(below)
            })
            .unwrap_or(false),
        }
    }
}

/// EventBridge's array rule: a leaf meeting an array matches when any element
/// does (how `SS`/`NS` sets are filtered). Objects are never leaf values.
fn any_scalar(value: &Value, f: &dyn Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| any_scalar(v, f)),
        Value::Object(_) => false,
        scalar => f(scalar),
    }
}

impl Literal {
    fn equals(&self, value: &Value) -> bool {
        match self {
            Literal::Str(s) => value.as_str() == Some(&**s),
            // DynamoDB writes numbers as strings (`{"N": "12.5"}`), so a
            // pattern number also equals a numeric string of that value.
            Literal::Num(n) => with_decimal(value, |text, parts| {
                n.cmp_with(text, parts) == Ordering::Equal
            })
            .unwrap_or(false),
            Literal::Bool(b) => value.as_bool() == Some(*b),
            Literal::Null => value.is_null(),
        }
    }
}

impl Text {
    fn is_prefix_of(&self, s: &str) -> bool {
        if self.ignore_case {
            let mut value = lower(s);
            self.text.chars().all(|c| value.next() == Some(c))
        } else {
            s.starts_with(&*self.text)
        }
    }

    fn is_suffix_of(&self, s: &str) -> bool {
        if self.ignore_case {
            let mut value = lower(s).rev();
            self.text.chars().rev().all(|c| value.next() == Some(c))
        } else {
            s.ends_with(&*self.text)
        }
    }
}

/// Unicode lowercase, one character at a time and without allocating. Not
/// `str::to_lowercase`, whose final-sigma rule depends on context: pattern
/// and value must be lowered the same way to compare.
pub(super) fn lower(s: &str) -> impl DoubleEndedIterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// Calls `f` with the value as a decimal: a JSON number, or a string that is
/// a decimal number (DynamoDB's `N`). `None` for anything else.
fn with_decimal<R>(value: &Value, f: impl FnOnce(&str, Parts) -> R) -> Option<R> {
    match value {
        Value::String(s) => decimal::parse(s).map(|parts| f(s, parts)),
        Value::Number(n) => {
            // serde_json renders at most ~25 bytes (u64, i64, or ryu's
            // shortest f64); the fallback only guards against a future
            // rendering that is longer.
            let mut buf = StackBuf::default();
            if write!(buf, "{n}").is_ok() {
                let text = buf.as_str();
                decimal::parse(text).map(|parts| f(text, parts))
            } else {
                let text = n.to_string();
                decimal::parse(&text).map(|parts| f(&text, parts))
            }
        }
        _ => None,
    }
}

struct StackBuf {
    bytes: [u8; 48],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or(&[]);
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse::lowered;

    #[test]
    fn case_insensitive_prefix_and_suffix_lower_both_sides() {
        let t = |s: &str| Text {
            text: lowered(s),
            ignore_case: true,
        };
        assert!(t("ÉT").is_prefix_of("été"));
        assert!(!t("ÉTÉX").is_prefix_of("été"));
        assert!(t(".PNG").is_suffix_of("photo.png"));
        assert!(!t(".PNG").is_suffix_of("png"));
        assert!(t("").is_prefix_of("anything"));
    }

    #[test]
    fn json_numbers_compare_as_decimals() {
        let is = |v: Value, n: &str| Literal::Num(Decimal::parse(n).expect("decimal")).equals(&v);
        assert!(is(serde_json::json!(26), "26.0"));
        assert!(is(serde_json::json!(-7), "-7"));
        assert!(is(serde_json::json!(1e300), "1e300"));
        assert!(is(serde_json::json!(0.1), "0.1"));
        assert!(!is(serde_json::json!(0.1), "0.10000000000000001"));
        assert!(!is(serde_json::json!(true), "1"));
        assert!(is(serde_json::json!(u64::MAX), "18446744073709551615"));
    }
}
