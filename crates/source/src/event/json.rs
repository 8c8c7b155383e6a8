//! The JSON writer every data format uses, fast and byte-exact: strings
//! escaped as Go's `encoding/json` does (the original adapter's bytes),
//! objects with their names sorted, arrays, base64 blobs, RFC 3339 times.
//!
//! Owns escaping and layout. It never decides which members a format has:
//! `data`, `aws` and `plain` do.

use std::collections::HashMap;

use aws_smithy_types::{Blob, DateTime};
use base64::Engine as _;

/// A map as a JSON object, names sorted byte-wise (Go's order, and the same
/// bytes for one record every time: a `HashMap` has no order of its own),
/// each value written by `value`.
pub(crate) fn sorted_object<V>(
    map: &HashMap<String, V>,
    out: &mut Vec<u8>,
    mut value: impl FnMut(&V, &mut Vec<u8>),
) {
    let mut entries: Vec<(&String, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (name, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, name);
        out.push(b':');
        value(v, out);
    }
    out.push(b'}');
}

pub(crate) fn array<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

pub(crate) fn blob(out: &mut Vec<u8>, b: &Blob) {
    out.push(b'"');
    let start = out.len();
    let encoded_len = base64::encoded_len(b.as_ref().len(), true).unwrap_or(0);
    out.resize(start + encoded_len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(b.as_ref(), &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

pub(crate) fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

pub(crate) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

pub(crate) fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => null(out),
    }
}

/// Bytes that `string` must look at: controls, `"`, `\`, `<`, `>`, `&`,
/// and 0xE2 (the lead byte of U+2028 and U+2029). Everything else is copied
/// as a run, which is most of every item.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xe2] = true;
    table
};

/// A JSON string escaped as Go's `encoding/json` (1.19, HTML-safe) does.
pub fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let control;
        // (escape sequence, bytes of input it replaces)
        let (escape, consumed): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0..=0x1f => {
                control = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ];
                (&control, 1)
            }
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
            0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa8) => {
                (b"\\u2028", 3)
            }
            0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa9) => {
                (b"\\u2029", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        i += consumed;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `ApproximateCreationDateTime` as the original printed it: aws-sdk-go v1
/// keeps the epoch seconds to the millisecond, truncating the rest
/// (`.999999` → `.999`); Go prints RFC 3339 in UTC, trailing zeros of the
/// fraction removed (see `tools/golden-gen/README.md`).
///
/// The Rust SDK parsed the seconds as an `f64`, so its nanoseconds can sit
/// a few hundred below an exact millisecond (`.123` → 122 999 906 ns): half a
/// microsecond of tolerance puts them back before truncating. The wire only
/// ever carries whole seconds or milliseconds, where this is exact.
pub fn format_time(t: &DateTime) -> String {
    let mut secs = t.secs();
    let mut millis = (t.subsec_nanos() + 500) / 1_000_000;
    if millis >= 1000 {
        // Saturating: the last second of `i64` is out of range either way.
        secs = secs.saturating_add(1);
        millis -= 1000;
    }
    rfc3339(secs, millis * 1_000_000)
}

/// RFC 3339 in UTC, fraction only when non-zero, trailing zeros trimmed.
/// RFC 3339 has four-digit years only: any other year gives Go's zero time.
pub(crate) fn rfc3339(secs: i64, nanos: u32) -> String {
    let Some(dt) = time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|dt| (0..=9999).contains(&dt.year()))
    else {
        return String::from("0001-01-01T00:00:00Z");
    };
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_as_go_does() {
        assert_eq!(escaped("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(escaped("\u{2028}x\u{2029}"), r#""\u2028x\u2029""#);
        assert_eq!(escaped("\"\\/\n\r\t"), r#""\"\\/\n\r\t""#);
        assert_eq!(
            escaped("\u{8}\u{c}\u{1}\u{1f}"),
            r#""\u0008\u000c\u0001\u001f""#
        );
        assert_eq!(
            escaped("\u{7f}é日本🎉\u{2027}"),
            "\"\u{7f}é日本🎉\u{2027}\""
        );
    }

    #[test]
    fn time_is_utc_with_millisecond_fraction_trimmed() {
        assert_eq!(
            format_time(&DateTime::from_secs(1_704_067_200)),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(&DateTime::from_fractional_secs(1_704_067_212, 0.3)),
            "2024-01-01T00:00:12.3Z"
        );
        assert_eq!(
            format_time(&DateTime::from_fractional_secs(1_704_067_212, 0.999999)),
            "2024-01-01T00:00:12.999Z"
        );
        assert_eq!(
            format_time(&DateTime::from_secs_f64(1_704_067_212.123)),
            "2024-01-01T00:00:12.123Z"
        );
    }

    #[test]
    fn times_without_a_four_digit_year_are_gos_zero_time() {
        // Found by the property tests: year -1 came out as `-001-…`, which
        // is no RFC 3339, and the last second of i64 rounded up overflowed.
        let zero = "0001-01-01T00:00:00Z";
        assert_eq!(format_time(&DateTime::from_secs(-62_167_219_201)), zero);
        assert_eq!(
            format_time(&DateTime::from_secs(-62_167_219_200)),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(&DateTime::from_secs(253_402_300_799)),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(format_time(&DateTime::from_secs(253_402_300_800)), zero);
        assert_eq!(
            format_time(&DateTime::from_secs_and_nanos(i64::MAX, 999_999_999)),
            zero
        );
        assert_eq!(format_time(&DateTime::from_secs(i64::MIN)), zero);
    }
}
