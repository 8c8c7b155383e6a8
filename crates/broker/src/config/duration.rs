//! ISO 8601 durations (`PT0.2S`, `PT1M30S`, `P1D`), as Knative's `backoffDelay` uses them.
//!
//! Owns only the text → [`Duration`] conversion. It never guesses: years and months (whose
//! length varies) and negative durations are refused with a message.

use std::time::Duration;

use super::ConfigError;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses an ISO 8601 duration: `P[nW][nD][T[nH][nM][nS]]`, each number with an optional
/// fraction (`.` or `,`). A week is 7 days and a day 24 hours. Years and months are refused.
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, ConfigError> {
    let invalid = |why: &str| {
        ConfigError::Invalid(format!(
            "{text:?} is not an ISO 8601 duration like PT0.2S or PT1M30S: {why}"
        ))
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| invalid("it must start with P"))?;
    let mut total_nanos: u128 = 0;
    let mut in_time = false;
    let mut components = 0;
    let mut number = String::new();
    let mut last_rank = 0u8;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' if !in_time && number.is_empty() => in_time = true,
            _ => {
                let (rank, unit_seconds): (u8, u128) = match (in_time, c) {
                    (false, 'Y') | (false, 'M') => {
                        return Err(invalid("years and months are not supported"));
                    }
                    (false, 'W') => (1, 7 * 86_400),
                    (false, 'D') => (2, 86_400),
                    (true, 'H') => (3, 3_600),
                    (true, 'M') => (4, 60),
                    (true, 'S') => (5, 1),
                    _ => return Err(invalid(&format!("unexpected {c:?}"))),
                };
                if rank <= last_rank {
                    return Err(invalid("components out of order or repeated"));
                }
                last_rank = rank;
                let nanos = component_nanos(&number, unit_seconds * NANOS_PER_SECOND)
                    .ok_or_else(|| invalid(&format!("bad number {number:?}")))?;
                total_nanos = total_nanos
                    .checked_add(nanos)
                    .ok_or_else(|| invalid("too long"))?;
                number.clear();
                components += 1;
            }
        }
    }
    if !number.is_empty() {
        return Err(invalid("a number lacks its unit"));
    }
    if components == 0 {
        return Err(invalid("no components"));
    }
    if in_time && last_rank < 3 {
        return Err(invalid("T must be followed by hours, minutes or seconds"));
    }
    let seconds = u64::try_from(total_nanos / NANOS_PER_SECOND).map_err(|_| invalid("too long"))?;
    Ok(Duration::new(
        seconds,
        (total_nanos % NANOS_PER_SECOND) as u32,
    ))
}

/// `number` (digits with an optional fraction) times `unit_nanos`, rounded down to whole
/// nanoseconds; `None` when it is not a number or overflows.
fn component_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit())
        || (number.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let mut nanos = whole.checked_mul(unit_nanos)?;
    // Beyond 18 fraction digits nothing changes at nanosecond precision for units up to a week.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let scale = 10u128.pow(fraction.len() as u32);
        nanos = nanos.checked_add(digits.checked_mul(unit_nanos)? / scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_durations() {
        let cases = [
            ("PT0.2S", Duration::from_millis(200)),
            ("PT0,5S", Duration::from_millis(500)),
            ("PT1S", Duration::from_secs(1)),
            ("PT1M30S", Duration::from_secs(90)),
            ("PT1.5M", Duration::from_secs(90)),
            ("PT2H", Duration::from_secs(7200)),
            ("P1D", Duration::from_secs(86_400)),
            ("P1W", Duration::from_secs(7 * 86_400)),
            ("P1DT1H1M1.001S", Duration::new(90_061, 1_000_000)),
            ("PT0S", Duration::ZERO),
            ("PT0.000000001S", Duration::from_nanos(1)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_iso8601_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refuses_invalid_durations() {
        let cases = [
            ("", "start with P"),
            ("0.2S", "start with P"),
            ("P", "no components"),
            ("PT", "no components"),
            ("PT1", "lacks its unit"),
            ("P1Y", "years and months"),
            ("P1M", "years and months"),
            ("PT1S1M", "out of order"),
            ("PT1S1S", "out of order"),
            ("PT.5S", "bad number"),
            ("PT1.S", "bad number"),
            ("PT1.2.3S", "bad number"),
            ("-PT1S", "start with P"),
            ("PT1X", "unexpected"),
            ("P1S", "unexpected"),
            ("P1DT", "T must be followed"),
            ("PT99999999999999999999999999999999999999H", "bad number"),
        ];
        for (text, fragment) in cases {
            let err = parse_iso8601_duration(text).unwrap_err().to_string();
            assert!(err.contains(fragment), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }
}
