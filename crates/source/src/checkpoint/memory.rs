//! `memory:` — checkpoints that live as long as the process. For tests and
//! for runs where a restart may start over.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{CheckpointError, CheckpointStore, Checkpoints};

#[derive(Debug, Default)]
pub struct MemoryStore {
    saved: Mutex<Checkpoints>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn load(&self) -> Result<Checkpoints, CheckpointError> {
        Ok(self.saved.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = checkpoints.clone();
        Ok(())
    }

    fn location(&self) -> String {
        "memory:".into()
    }
}
