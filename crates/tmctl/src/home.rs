//! Where tmctl keeps things: `$HOME/.triggermesh/cli/`.
//!
//! ```text
//! config.yaml              the current context (broker)
//! <broker>/manifest.yaml   every object created in the broker (secrets too: mode 0600)
//! <broker>/broker.conf     the broker's triggers, derived from the manifest (0600)
//! <broker>/run.json        what runs: pids and ports (see `runtime`)
//! <broker>/logs/           each process's output
//! <broker>/checkpoints/    each source's stream positions
//! <broker>/broker-state.json  events the broker could not deliver before it stopped
//! ```
//!
//! This module owns paths and how files are written (whole, atomically,
//! private); it never interprets their contents.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `$HOME/.triggermesh/cli`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

impl Home {
    pub fn from_env() -> Result<Home> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .context("HOME is not set; tmctl keeps its files under $HOME/.triggermesh/cli")?;
        Ok(Home {
            root: PathBuf::from(home).join(".triggermesh").join("cli"),
        })
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// The current broker's name, if one was set.
    pub fn current(&self) -> Result<Option<String>> {
        let path = self.config_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: Config = serde_saphyr::from_str(&text)
            .with_context(|| format!("{} is not valid", path.display()))?;
        Ok(config.context)
    }

    pub fn set_current(&self, broker: Option<&str>) -> Result<()> {
        let config = Config {
            context: broker.map(str::to_owned),
        };
        let text = serde_saphyr::to_string(&config).context("cannot write config.yaml")?;
        write_private(&self.config_path(), text.as_bytes())
    }

    /// The broker's folder, whether or not it exists.
    pub fn broker_dir(&self, name: &str) -> BrokerDir {
        BrokerDir {
            name: name.to_owned(),
            dir: self.root.join(name),
        }
    }

    /// The broker named, or the current one; it must exist.
    pub fn broker(&self, name: Option<&str>) -> Result<BrokerDir> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => self
                .current()?
                .context("no broker: create one with `tmctl create broker NAME`")?,
        };
        let dir = self.broker_dir(&name);
        if !dir.exists() {
            bail!("broker {name} does not exist: create it with `tmctl create broker {name}`");
        }
        Ok(dir)
    }
}

/// One broker's folder.
#[derive(Debug, Clone)]
pub struct BrokerDir {
    pub name: String,
    pub dir: PathBuf,
}

impl BrokerDir {
    pub fn exists(&self) -> bool {
        self.manifest().is_file()
    }
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.yaml")
    }
    pub fn broker_conf(&self) -> PathBuf {
        self.dir.join("broker.conf")
    }
    pub fn run_state(&self) -> PathBuf {
        self.dir.join("run.json")
    }
    pub fn broker_state(&self) -> PathBuf {
        self.dir.join("broker-state.json")
    }
    pub fn log(&self, process: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{process}.log"))
    }
    pub fn checkpoints(&self, source: &str) -> PathBuf {
        self.dir.join("checkpoints").join(source)
    }
}

/// Creates `dir` and its parents, readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes a whole file atomically (temporary file, then rename), mode 0600:
/// a crash leaves the old or the new file, never half of one, and secrets
/// are never readable by others, not even for a moment.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path has a folder")?;
    create_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// A name that Kubernetes accepts for every object tmctl makes (a DNS-1123
/// label: what `dump` prints must apply).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{what} name {name:?} is not valid: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["b", "my-broker", "b2", "a-1-b"] {
            assert!(check_name("broker", good).is_ok(), "{good}");
        }
        for bad in ["", "B", "-b", "b-", "a_b", "a.b", &"x".repeat(64)] {
            let e = check_name("broker", bad).unwrap_err().to_string();
            assert!(e.starts_with("broker name"), "{e}");
        }
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("manifest.yaml");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }
}
