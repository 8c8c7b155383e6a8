//! Exact comparison of decimal numbers written as text.
//!
//! DynamoDB's `N` values are strings of up to 38 significant digits, more than
//! an `f64` holds, so `numeric` conditions compare the digit strings instead:
//! `12345678901234567890123456789012345678` and
//! `12345678901234567890123456789012345679` must not compare equal. This file
//! owns that comparison; it never allocates and never converts to `f64`.

use std::cmp::Ordering;
use std::ops::Range;

/// Exponents are clamped to this magnitude so that adding the position of the
/// decimal point can never overflow. Numbers that far apart still order
/// correctly; only two numbers both beyond 10^(10^15) could compare wrongly.
const EXP_LIMIT: i64 = 1_000_000_000_000_000;

/// Where the significant digits of a decimal string are, and its scale.
///
/// The value is `±0.d₁d₂d₃… × 10^exp`, where `d₁…` are the bytes of
/// `text[start..end]` with any `.` skipped; `d₁` and the last digit are not
/// zero. Zero is `start == end`, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Parts {
    neg: bool,
    start: usize,
    end: usize,
    exp: i64,
}

/// A decimal number owned by a pattern: its text and where its digits are.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decimal {
    text: Box<str>,
    parts: Parts,
}

impl Decimal {
    /// `None` when `text` is not a decimal number.
    pub(super) fn parse(text: &str) -> Option<Decimal> {
        let parts = parse(text)?;
        Some(Decimal {
            text: text.into(),
            parts,
        })
    }

    /// Compares this number with `other`, described by `other_parts`.
    pub(super) fn cmp_with(&self, other: &str, other_parts: Parts) -> Ordering {
        compare(&self.text, self.parts, other, other_parts)
    }

    pub(super) fn cmp_decimal(&self, other: &Decimal) -> Ordering {
        compare(&self.text, self.parts, &other.text, other.parts)
    }
}

fn is_digit(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_digit)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit
/// before the exponent (`5`, `-0.25`, `.5`, `5.`, `1E+3`). No spaces, no
/// `NaN` or `Infinity`, no hex: DynamoDB never writes those as numbers.
pub(super) fn parse(text: &str) -> Option<Parts> {
    let b = text.as_bytes();
    let (neg, int_start) = sign_at(b, 0);
    let int = digit_run(b, int_start);
    let frac = if b.get(int.end) == Some(&b'.') {
        digit_run(b, int.end + 1)
    } else {
        int.end..int.end
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let (exp, end) = exponent(b, frac.end)?;
    if end != b.len() {
        return None;
    }
    Some(significant(b, neg, int, frac, exp))
}

/// Whether an optional sign at `i` is `-`, and where what follows starts.
fn sign_at(b: &[u8], i: usize) -> (bool, usize) {
    match b.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// The digits from `start` on (possibly none).
fn digit_run(b: &[u8], start: usize) -> Range<usize> {
    let mut end = start;
    while is_digit(b.get(end)) {
        end += 1;
    }
    start..end
}

/// The exponent at `i` (0 when there is none) and where it ends; `None`
/// when an `e` has no digits.
fn exponent(b: &[u8], i: usize) -> Option<(i64, usize)> {
    if !matches!(b.get(i), Some(b'e' | b'E')) {
        return Some((0, i));
    }
    let (neg, mut i) = sign_at(b, i + 1);
    if !is_digit(b.get(i)) {
        return None;
    }
    let mut exp: i64 = 0;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        exp = (exp * 10 + i64::from(d - b'0')).min(EXP_LIMIT);
        i += 1;
    }
    Some((if neg { -exp } else { exp }, i))
}

/// The significant digits among the integer digits `int` and the fraction
/// digits `frac` of `b`, scaled by `exp`.
fn significant(b: &[u8], neg: bool, int: Range<usize>, frac: Range<usize>, exp: i64) -> Parts {
    let nonzero = |&(_, d): &(usize, &u8)| *d != b'0';
    let int_digits = || b.get(int.clone()).unwrap_or(&[]).iter().enumerate();
    let frac_digits = || b.get(frac.clone()).unwrap_or(&[]).iter().enumerate();
    // The first significant digit fixes the scale: in `12.5` it is one
    // place left of two integer digits (exp 2, 0.125e2); in `0.05` it is
    // one zero after the point (exp -1, 0.5e-1).
    let (start, point) = if let Some((k, _)) = int_digits().find(nonzero) {
        (int.start + k, to_i64(int.len() - k))
    } else if let Some((k, _)) = frac_digits().find(nonzero) {
        (frac.start + k, -to_i64(k))
    } else {
        return Parts {
            neg: false,
            start: 0,
            end: 0,
            exp: 0,
        };
    };
    // Trailing zeros are dropped so that digit strings compare
    // lexicographically: 12.50 and 12.5 are the same digits, 125.
    let end = if let Some((k, _)) = frac_digits().rev().find(nonzero) {
        frac.start + k + 1
    } else if let Some((k, _)) = int_digits().rev().find(nonzero) {
        int.start + k + 1
    } else {
        start + 1
    };
    Parts {
        neg,
        start,
        end,
        exp: point.saturating_add(exp),
    }
}

fn sign(p: Parts) -> i8 {
    match (p.start == p.end, p.neg) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    }
}

fn digits(text: &str, p: Parts) -> impl Iterator<Item = u8> + '_ {
    text.as_bytes()
        .get(p.start..p.end)
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|&d| d != b'.')
}

/// Orders two numbers exactly. `a` must have been parsed from `a_text` (and
/// `b` from `b_text`): other text compares as garbage but never panics.
pub(super) fn compare(a_text: &str, a: Parts, b_text: &str, b: Parts) -> Ordering {
    let (sa, sb) = (sign(a), sign(b));
    if sa != sb {
        return sa.cmp(&sb);
    }
    if sa == 0 {
        return Ordering::Equal;
    }
    let magnitude = a
        .exp
        .cmp(&b.exp)
        .then_with(|| digits(a_text, a).cmp(digits(b_text, b)));
    if sa < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        let pa = parse(a).unwrap_or_else(|| panic!("{a} should parse"));
        let pb = parse(b).unwrap_or_else(|| panic!("{b} should parse"));
        compare(a, pa, b, pb)
    }

    #[test]
    fn equal_values_written_differently() {
        for (a, b) in [
            ("12.5", "12.50"),
            ("12.5", "1.25e1"),
            ("12.5", "125E-1"),
            ("0", "-0"),
            ("0", "0.000"),
            ("0", "0e9"),
            ("100", "1e2"),
            ("100", "1E+2"),
            ("0.05", ".05"),
            ("5", "5."),
            ("5", "+5"),
            ("007", "7"),
            ("-3.10", "-3.1"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} vs {b}");
        }
    }

    #[test]
    fn orders_signs_scales_and_digits() {
        for (a, b) in [
            ("-1", "0"),
            ("0", "0.0000001"),
            ("-100", "-99.9"),
            ("-0.5", "-0.25"),
            ("9", "10"),
            ("0.099", "0.1"),
            ("12.5", "12.51"),
            ("1e-400", "1"),
            ("-1e400", "-1e399"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
            ),
            (
                "-99999999999999999999999999999999999999",
                "-99999999999999999999999999999999999998",
            ),
            (
                "0.00000000000000000000000000000000000001",
                "0.00000000000000000000000000000000000002",
            ),
        ] {
            assert_eq!(cmp(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(cmp(b, a), Ordering::Greater, "{b} > {a}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_decimal() {
        for s in [
            "", "-", "+", ".", "abc", "1a", "1e", "1e+", "e5", "1.2.3", " 1", "1 ", "NaN",
            "Infinity", "0x10", "--1", "1_000",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn huge_exponents_saturate_without_panicking() {
        let big = format!("1e{}", "9".repeat(40));
        let small = format!("1e-{}", "9".repeat(40));
        assert_eq!(cmp(&big, "1e300"), Ordering::Greater);
        assert_eq!(cmp(&small, "1e-300"), Ordering::Less);
    }
}
