//! Dead letters, Knative's way: an event that cannot be delivered goes,
//! unchanged, to a second sink, with extensions saying why.
//!
//! Owns the dead letter's shape. It never decides when an event is given
//! up: that is [`super::deliver`]'s job.

use std::sync::Arc;

use base64::Engine as _;

use super::retry::GiveUpReason;
use super::{SendError, Sink};
use crate::event::{CloudEvent, padded_sequence};

/// The dead-letter sink (`DEAD_LETTER_SINK`).
#[derive(Clone)]
pub struct DeadLetter {
    pub sink: Arc<dyn Sink>,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("sink", &self.sink.destination())
            .finish()
    }
}

impl DeadLetter {
    /// The event as the dead-letter sink gets it: every attribute and the
    /// data unchanged, plus Knative's `knativeerrordest`,
    /// `knativeerrorcode` and `knativeerrordata` (base64 of the start of the
    /// sink's answer), and ours: `deadletterreason`, `deliveryattempts`,
    /// `dynamodbshard` and `sequence`.
    pub fn letter(
        event: &CloudEvent,
        destination: &str,
        reason: GiveUpReason,
        attempts: u32,
        last_error: Option<&SendError>,
    ) -> CloudEvent {
        let mut letter = event.clone();
        let mut set = |name: &str, value: String| {
            letter.extensions.retain(|(k, _)| &**k != name);
            letter.extensions.push((Arc::from(name), Arc::from(value)));
        };
        set("knativeerrordest", destination.to_owned());
        if let Some(SendError::Status { status, raw, .. }) = last_error {
            set("knativeerrorcode", status.to_string());
            if !raw.is_empty() {
                set(
                    "knativeerrordata",
                    base64::engine::general_purpose::STANDARD.encode(raw),
                );
            }
        }
        set("deadletterreason", reason.as_str().to_owned());
        set("deliveryattempts", attempts.to_string());
        set("dynamodbshard", event.origin.shard.to_string());
        set("sequence", padded_sequence(&event.origin.sequence));
        letter
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::event::Origin;

    #[test]
    fn a_letter_is_the_event_plus_why() {
        let mut event = CloudEvent::with_id("e1");
        event.data = Bytes::from_static(b"{\"a\":1}");
        event
            .extensions
            .push((Arc::from("sequence"), Arc::from("old")));
        event.origin = Origin {
            shard: Arc::from("shardId-1"),
            sequence: Arc::from("12345"),
            created_ms: None,
        };
        let error = SendError::Status {
            status: 400,
            retry_after: None,
            body: "bad".into(),
            raw: Bytes::from_static(b"bad\n"),
        };
        let letter = DeadLetter::letter(
            &event,
            "http://sink/",
            GiveUpReason::Rejected,
            1,
            Some(&error),
        );
        assert_eq!(letter.id, "e1");
        assert_eq!(letter.data, event.data);
        let ext: std::collections::BTreeMap<&str, &str> = letter
            .extensions
            .iter()
            .map(|(k, v)| (&**k, &**v))
            .collect();
        assert_eq!(ext["knativeerrordest"], "http://sink/");
        assert_eq!(ext["knativeerrorcode"], "400");
        assert_eq!(ext["knativeerrordata"], "YmFkCg==");
        assert_eq!(ext["deadletterreason"], "rejected");
        assert_eq!(ext["deliveryattempts"], "1");
        assert_eq!(ext["dynamodbshard"], "shardId-1");
        assert_eq!(ext["sequence"], format!("{:0>40}", "12345"));
        assert_eq!(letter.extensions.len(), ext.len(), "each name once");

        let timeout = DeadLetter::letter(
            &event,
            "http://sink/",
            GiveUpReason::Attempts,
            5,
            Some(&SendError::Timeout),
        );
        assert!(
            !timeout
                .extensions
                .iter()
                .any(|(k, _)| &**k == "knativeerrorcode")
        );
    }
}
