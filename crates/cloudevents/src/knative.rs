//! Knative eventing's delivery conventions, as its `kncloudevents` package
//! has them: which failed attempts are tried again, and what a dead letter
//! says about the failure.
//!
//! Owns the rule and the extension names. It never waits, sends or counts
//! attempts: the callers' retry loops do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::CloudEvent;

/// At most this much of a failed answer's body goes into `knativeerrordata`.
pub const ERROR_DATA_LIMIT: usize = 1024;

/// Whether an answer with this status is worth another attempt
/// (`kncloudevents.SelectiveRetry`): 404, 408, 409, 429 and every 5xx.
/// Failures without an answer (refused, reset, timed out) are always tried
/// again.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 404 | 408 | 409 | 429 | 500..=599)
}

/// The event as a dead-letter sink gets it: unchanged, plus
/// `knativeerrordest` (where it could not go), and when the destination
/// answered, `knativeerrorcode` (the status) and `knativeerrordata` (base64
/// of the start of the answer's body, when there was one).
pub fn dead_letter(
    event: &CloudEvent,
    destination: &str,
    answer: Option<(u16, &[u8])>,
) -> CloudEvent {
    let mut letter = event.with_extension("knativeerrordest", destination);
    if let Some((status, body)) = answer {
        letter.set_extension("knativeerrorcode", status.to_string());
        if !body.is_empty() {
            let start = &body[..body.len().min(ERROR_DATA_LIMIT)];
            letter.set_extension("knativeerrordata", BASE64.encode(start));
        }
    }
    letter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_rule_is_knatives() {
        for s in [404, 408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 300, 301, 400, 401, 403, 405, 410, 413, 422, 600] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn a_dead_letter_is_the_event_plus_the_failure() {
        let event = CloudEvent {
            id: "e".into(),
            data: Some(bytes::Bytes::from_static(b"{}")),
            ..CloudEvent::default()
        }
        .with_extension("knativeerrorcode", "stale");
        let letter = dead_letter(&event, "http://sink/", Some((400, b"bad\n")));
        assert_eq!(letter.data, event.data);
        assert_eq!(letter.attribute("knativeerrordest"), Some("http://sink/"));
        assert_eq!(letter.attribute("knativeerrorcode"), Some("400"));
        assert_eq!(letter.attribute("knativeerrordata"), Some("YmFkCg=="));
        assert_eq!(letter.extensions.len(), 3, "each name once");

        let long = vec![b'x'; 3 * ERROR_DATA_LIMIT];
        let letter = dead_letter(&event, "d", Some((500, &long)));
        let data = BASE64
            .decode(letter.attribute("knativeerrordata").unwrap())
            .unwrap();
        assert_eq!(data.len(), ERROR_DATA_LIMIT);

        let unanswered = dead_letter(&CloudEvent::default(), "d", None);
        assert_eq!(unanswered.attribute("knativeerrorcode"), None);
        assert_eq!(unanswered.attribute("knativeerrordata"), None);
    }
}
