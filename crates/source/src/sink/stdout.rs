//! No `K_SINK`: each event as one structured-mode JSON line on standard
//! output (logs go to standard error).

use std::io::Write;

use async_trait::async_trait;

use super::{SendError, Sink};
use crate::event::CloudEvent;

#[derive(Debug, Default)]
pub struct StdoutSink;

#[async_trait]
impl Sink for StdoutSink {
    async fn send(&self, event: &CloudEvent) -> Result<(), SendError> {
        let mut line = event.to_structured_line().into_bytes();
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| SendError::Transport(format!("standard output: {e}")))
    }
}
