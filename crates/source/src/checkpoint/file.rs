//! `file:<directory>` — checkpoints in `<directory>/checkpoints.json`.
//!
//! Each save writes a temporary file in the same directory, syncs it, renames
//! it over the old one and syncs the directory: after `kill -9` at any moment
//! the file holds the previous map or the new one. A lock file keeps a second
//! adapter off the same directory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{CheckpointError, CheckpointStore, Checkpoints};

const FILE_NAME: &str = "checkpoints.json";
const LOCK_NAME: &str = "lock";

#[derive(Debug)]
pub struct FileStore {
    dir: Arc<PathBuf>,
    /// Held for the life of the store: the lock goes with it.
    _lock: File,
    /// This store made the directory (and so may take it away again).
    created: bool,
    /// This store made the lock file (a `lock` that was there stays).
    lock_created: bool,
}

/// A store that never saved (a start that failed, or stopped before any
/// position) leaves nothing behind: not its lock file, nor the directory
/// it made.
impl Drop for FileStore {
    fn drop(&mut self) {
        if self.path().exists() {
            return;
        }
        if self.lock_created {
            let _ = fs::remove_file(self.dir.join(LOCK_NAME));
        }
        if self.created {
            // Fails, as it should, when anything else is in it.
            let _ = fs::remove_dir(&*self.dir);
        }
    }
}

impl FileStore {
    /// Creates the directory if needed and takes its lock.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let dir = dir.into();
        let io = |e: std::io::Error| CheckpointError::Io {
            location: location(&dir),
            message: e.to_string(),
        };
        let mut created = false;
        // A store that goes away unlinks its lock file (see `Drop`): a lock
        // taken on a file no longer at the path is worth nothing, so the
        // file is opened again.
        for _ in 0..3 {
            created |= !dir.exists();
            fs::create_dir_all(&dir).map_err(io)?;
            let path = dir.join(LOCK_NAME);
            let lock_created = !path.exists();
            let lock = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io)?;
            lock.try_lock().map_err(|e| match e {
                fs::TryLockError::WouldBlock => CheckpointError::Locked {
                    location: location(&dir),
                },
                fs::TryLockError::Error(e) => io(e),
            })?;
            let inode = |m: fs::Metadata| m.ino();
            if fs::metadata(&path).map(inode).ok() == lock.metadata().map(inode).ok() {
                return Ok(FileStore {
                    dir: Arc::new(dir),
                    _lock: lock,
                    created,
                    lock_created,
                });
            }
        }
        Err(CheckpointError::Locked {
            location: location(&dir),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

fn location(dir: &Path) -> String {
    format!("file:{}", dir.display())
}

fn write_atomically(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".checkpoints-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(FILE_NAME)).map_err(|e| e.error)?;
    // The rename is durable once the directory is.
    File::open(dir)?.sync_all()
}

#[async_trait]
impl CheckpointStore for FileStore {
    async fn load(&self) -> Result<Checkpoints, CheckpointError> {
        let path = self.path();
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CheckpointError::corrupt(path.display().to_string(), &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoints::default()),
            Err(e) => Err(CheckpointError::Io {
                location: self.location(),
                message: e.to_string(),
            }),
        }
    }

    async fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        let bytes = serde_json::to_vec(checkpoints).map_err(|e| CheckpointError::Io {
            location: self.location(),
            message: e.to_string(),
        })?;
        let dir = self.dir.clone();
        let result = tokio::task::spawn_blocking(move || write_atomically(&dir, &bytes)).await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CheckpointError::Io {
                location: self.location(),
                message: e.to_string(),
            }),
            Err(e) => Err(CheckpointError::Io {
                location: self.location(),
                message: e.to_string(),
            }),
        }
    }

    fn location(&self) -> String {
        location(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::ShardPosition;
    use crate::record::SequenceNumber;

    fn sample(n: u32) -> Checkpoints {
        let mut cps = Checkpoints::default();
        cps.streams.entry("s".into()).or_default().shards.insert(
            "shard".into(),
            ShardPosition::After(SequenceNumber::parse(&n.to_string()).unwrap()),
        );
        cps
    }

    #[tokio::test]
    async fn saves_and_loads_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("a/b")).unwrap();
        assert_eq!(store.load().await.unwrap(), Checkpoints::default());
        store.save(&sample(1)).await.unwrap();
        store.save(&sample(2)).await.unwrap();
        assert_eq!(store.load().await.unwrap(), sample(2));
        let mut names: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["checkpoints.json", "lock"]);
    }

    #[tokio::test]
    async fn a_store_that_never_saved_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("ns.name");
        drop(FileStore::open(&folder).unwrap());
        assert!(!folder.exists(), "the folder it made is left");

        // A folder it did not make stays (only the lock it made goes)...
        fs::create_dir(&folder).unwrap();
        drop(FileStore::open(&folder).unwrap());
        assert_eq!(fs::read_dir(&folder).unwrap().count(), 0);
        // ...and so does a lock file that was there before.
        fs::write(folder.join(LOCK_NAME), b"").unwrap();
        drop(FileStore::open(&folder).unwrap());
        assert!(folder.join(LOCK_NAME).exists());
        fs::remove_file(folder.join(LOCK_NAME)).unwrap();

        // And one that saved keeps everything; it can be opened again.
        let store = FileStore::open(&folder).unwrap();
        store.save(&sample(1)).await.unwrap();
        drop(store);
        assert!(folder.join(FILE_NAME).exists() && folder.join(LOCK_NAME).exists());
        let again = FileStore::open(&folder).unwrap();
        assert_eq!(again.load().await.unwrap(), sample(1));
    }

    #[tokio::test]
    async fn a_second_store_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = FileStore::open(dir.path()).unwrap();
        let err = FileStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::Locked { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{\"streams\": ").unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let err = store.load().await.unwrap_err();
        assert!(err.to_string().contains("unreadable"), "{err}");
    }
}
