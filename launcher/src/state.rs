//! Pod state on disk: one 0700 directory per pod under the root.
//!
//! ```text
//! <root>/.lock                 flock(2): serializes up/down of any pod
//! <root>/<pod>/pod.json        spec + runtime identity (pause, supervisor, cgroup)
//! <root>/<pod>/status.json     written by the supervisor on every change
//! <root>/<pod>/stop            grace period asked by `down`, read by the supervisor
//! <root>/<pod>/logs/<c>.log    CRI-format container logs
//! ```
//!
//! Every file is written whole to a temp file and renamed, so a reader never sees half
//! of one. Files are not trusted for liveness: a process is alive only if a pidfd can
//! be opened on its pid and its start time still matches the recorded one.

use crate::spec::PodSpec;
use crate::status::PodStatus;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("pod {0:?} already exists. Hint: launcher down {0}")]
    InUse(String),
    #[error("pod {0:?} not found")]
    NotFound(String),
    #[error("failed to create state directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("failed to lock {path}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("failed to write {path}")]
    Write { path: PathBuf, source: io::Error },
    #[error("failed to read {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A process recorded by pid and start time (clock ticks since boot, field 22 of
/// /proc/PID/stat), which together name one process even after its pid is reused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcRef {
    pub fn of(pid: i32) -> Option<ProcRef> {
        Some(ProcRef {
            pid,
            start_time: stat(pid)?.1,
        })
    }

    /// Alive: a pidfd opens, the start time matches, and it is not a zombie.
    pub fn alive(&self) -> bool {
        crate::sys::pidfd_open(self.pid).is_ok()
            && stat(self.pid).is_some_and(|(state, start)| state != 'Z' && start == self.start_time)
    }
}

/// (state, start time) from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); start time is field 22.
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub spec: PodSpec,
    pub uid: String,
    pub created: String,
    pub cgroup: PathBuf,
    pub pause_binary: PathBuf,
    pub pause: Option<ProcRef>,
    pub supervisor: Option<ProcRef>,
}

pub struct Root {
    pub dir: PathBuf,
}

/// An exclusive flock on `<root>/.lock`, released on drop.
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

impl Root {
    pub fn open(dir: &Path) -> Result<Root, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Root {
            dir: dir.to_path_buf(),
        })
    }

    pub fn lock(&self) -> Result<Lock, StateError> {
        let path = self.dir.join(".lock");
        let err = |source| StateError::Lock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| err(e.into()))
    }

    pub fn pod_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the pod's directory; fails if the name is taken.
    pub fn create_pod(&self, name: &str) -> Result<PathBuf, StateError> {
        let dir = self.pod_dir(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::InUse(name.into()))
            }
            Err(source) => return Err(StateError::CreateDir { path: dir, source }),
        }
        let logs = dir.join("logs");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&logs)
            .map_err(|source| StateError::CreateDir { path: logs, source })?;
        Ok(dir)
    }

    pub fn pods(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("pod.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    pub fn record(&self, name: &str) -> Result<PodRecord, StateError> {
        let path = self.pod_dir(name).join("pod.json");
        if !path.exists() {
            return Err(StateError::NotFound(name.into()));
        }
        read_json(&path)
    }

    pub fn status(&self, name: &str) -> Option<PodStatus> {
        read_json(&self.pod_dir(name).join("status.json")).ok()
    }
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = fs::read(path).map_err(|source| StateError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
        path: path.into(),
        source,
    })
}

/// Writes `value` as JSON to `path` atomically: temp file in the same directory, then rename(2).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| err(e.into()))?;
    file.write_all(&bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}
