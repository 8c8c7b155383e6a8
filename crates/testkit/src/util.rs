//! Small shared helpers: deterministic "random" decisions, stable hashing and percent-decoding.
//!
//! Everything that decides by chance in this crate (sink rejections, proxy fault ratios) goes
//! through [`chance`], so a given seed and call index always give the same answer.

/// SplitMix64: a well-mixed 64-bit function of its input.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Deterministic decision: true for about `ratio` of the indexes, the same for a given
/// `(seed, stream, index)` on every run.
pub(crate) fn chance(seed: u64, stream: u64, index: u64, ratio: f64) -> bool {
    if ratio <= 0.0 {
        return false;
    }
    if ratio >= 1.0 {
        return true;
    }
    let h = splitmix64(seed ^ splitmix64(stream.wrapping_add(splitmix64(index))));
    // 53 random bits as a float in [0, 1).
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
    unit < ratio
}

/// FNV-1a 64: a stable hash (unlike `std`'s, which may change between Rust versions).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Decodes `%XX` escapes (as UTF-8 bytes); malformed escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_is_deterministic_and_close_to_ratio() {
        let hits = (0..10_000).filter(|i| chance(7, 1, *i, 0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        let again = (0..10_000).filter(|i| chance(7, 1, *i, 0.3)).count();
        assert_eq!(hits, again);
        let other_seed = (0..100)
            .filter(|i| chance(8, 1, *i, 0.5))
            .collect::<Vec<_>>();
        let seed = (0..100)
            .filter(|i| chance(7, 1, *i, 0.5))
            .collect::<Vec<_>>();
        assert_ne!(seed, other_seed);
        assert!(!chance(1, 1, 1, 0.0));
        assert!(chance(1, 1, 1, 1.0));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
