//! Dead letters, Knative's way: an event that cannot be delivered goes,
//! unchanged, to a second sink, with extensions saying why.
//!
//! Owns the dead letter's shape. It never decides when an event is given
//! up: that is [`super::deliver`]'s job.

use std::sync::Arc;

use awsdynamodbsource_cloudevents::knative;

use super::retry::GiveUpReason;
use super::{SendError, Sink};
use crate::event::{CloudEvent, StreamEvent, padded_sequence};

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
        event: &StreamEvent,
        destination: &str,
        reason: GiveUpReason,
        attempts: u32,
        last_error: Option<&SendError>,
    ) -> CloudEvent {
        let answer = match last_error {
            Some(SendError::Status { status, raw, .. }) => Some((*status, &raw[..])),
            _ => None,
        };
        let mut letter = knative::dead_letter(event, destination, answer);
        letter.set_extension("deadletterreason", reason.as_str());
        letter.set_extension("deliveryattempts", attempts.to_string());
        letter.set_extension("dynamodbshard", event.origin.shard.clone());
        letter.set_extension("sequence", padded_sequence(&event.origin.sequence));
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
        let mut event = StreamEvent::with_id("e1");
        event.data = Some(Bytes::from_static(b"{\"a\":1}"));
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
