//! Files the runtime trusts, and the locks on them: the state and data roots (made
//! 0700, refused when another user could change them), a pod's state directory and
//! its lock, JSON written whole, and processes named so that a reused pid is not
//! mistaken for them. What the files hold is other modules' business (`record`,
//! `status`, `events`); where they are is `layout`'s.
//!
//! Locking is per pod: `up` makes the directory under a temporary name with its
//! record in it, locks it, and renames it into place (renameat2 RENAME_NOREPLACE), so
//! a name appears already locked and with a record that names its cgroup. `up` and
//! then the pod's supervisor hold the lock until the record is complete; `down` takes
//! it, so it never sees a pod half made, and never waits on another pod.
//!
//! Every file is written whole to a temp file and renamed, so a reader never sees half
//! of one. Files are not trusted for liveness: a process is alive only if a pidfd can
//! be opened on its pid and its start time still matches the recorded one.

use crate::layout::Roots;
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
    #[error("{path} is writable by {who} (mode {mode:o}): another user could change what the runtime trusts. Hint: chmod 0700 {path}, or pass another {flag}")]
    Insecure {
        path: PathBuf,
        who: &'static str,
        mode: u32,
        flag: String,
    },
    #[error("{path} belongs to uid {owner}, who could change what the runtime trusts. Hint: chown root {path}, or pass another {flag}")]
    NotOurs {
        path: PathBuf,
        owner: u32,
        flag: String,
    },
    #[error("{path} is corrupt: {error}")]
    Corrupt {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("{path} is corrupt: {size} bytes, more than any pod's state can be")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path} is corrupt: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is corrupt: it is the record of pod {found:?}")]
    Misplaced { path: PathBuf, found: String },
}

impl StateError {
    /// The file is there but is not what the runtime wrote.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            StateError::Corrupt { .. }
                | StateError::TooLarge { .. }
                | StateError::NotAFile { .. }
                | StateError::Misplaced { .. }
        )
    }
}

/// The most a state file may be. A record holds a manifest of at most 3 MiB, whose
/// strings may grow up to six times as JSON escapes (a control character becomes
/// `\u0001`); anything larger was not written by the runtime and is not read.
const MAX_STATE_FILE: u64 = 32 << 20;

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
            start_time: crate::procfs::stat(pid)?.start_time,
        })
    }

    /// Alive: a pidfd opens, the start time matches, and it is not a zombie.
    pub fn alive(&self) -> bool {
        crate::sys::pidfd_open(self.pid).is_ok()
            && crate::procfs::stat(self.pid)
                .is_some_and(|st| st.state != 'Z' && st.start_time == self.start_time)
    }
}

/// Opens (making it 0700 if missing) a directory the runtime trusts: its one
/// canonical name, refused if another user could rename or replace what is in it.
pub fn trusted_dir(dir: &Path, flag: &str) -> Result<PathBuf, StateError> {
    fn read(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
    // Whoever may rename a directory above it may swap what the runtime finds there:
    // every one of them is checked, before anything is made below them.
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let existing = fs::canonicalize(existing).map_err(read(existing))?;
    for path in existing.ancestors() {
        check_trusted(path, flag)?;
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    // One name for it, whatever symlinks or `..` led there: the path pods have
    // hidden from them is this one.
    let dir = fs::canonicalize(dir).map_err(read(dir))?;
    // And what was made below them (or where a symlink led).
    for path in dir.ancestors().take_while(|p| !existing.starts_with(p)) {
        check_trusted(path, flag)?;
    }
    Ok(dir)
}

/// `path` is a file or directory no user but root (or this process's) may change:
/// owned by one of them, writable by nobody else unless sticky (a shared /tmp keeps
/// others from renaming what is not theirs). `flag` is where the user chose it.
pub fn check_trusted(path: &Path, flag: &str) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).map_err(|source| StateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let owner = meta.uid();
    if owner != 0 && owner != crate::sys::euid() {
        return Err(StateError::NotOurs {
            path: path.to_path_buf(),
            owner,
            flag: flag.to_string(),
        });
    }
    let mode = meta.mode() & 0o7777;
    let who = match mode {
        m if m & 0o1000 != 0 => None,
        m if m & 0o002 != 0 => Some("everyone"),
        m if m & 0o020 != 0 => Some("its group"),
        _ => None,
    };
    match who {
        Some(who) => Err(StateError::Insecure {
            path: path.to_path_buf(),
            who,
            mode,
            flag: flag.to_string(),
        }),
        None => Ok(()),
    }
}

/// The state root, opened, with the data root that goes with it.
#[derive(Clone)]
pub struct Root {
    pub dir: PathBuf,
    pub roots: Roots,
}

/// An exclusive flock on a pod's directory. Dropping it only closes this fd: the lock
/// goes once every copy is closed (the detached supervisor inherits one), never by
/// an explicit unlock that would take it from the other holders too.
pub struct PodLock(std::os::fd::OwnedFd);

impl PodLock {
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }

    /// Takes over a lock inherited as `fd` (the supervisor's fd 4).
    pub fn inherited(fd: std::os::fd::OwnedFd) -> PodLock {
        PodLock(fd)
    }
}

impl Root {
    /// The state root `dir` (made if missing), whose pods keep their data under
    /// `data` (made when a pod needs it: see [`Root::data_root`]).
    pub fn open(dir: &Path, data: &Path) -> Result<Root, StateError> {
        let dir = trusted_dir(dir, "--root")?;
        Ok(Root {
            roots: Roots {
                state: dir.clone(),
                // One name for it, as for the state root, once it exists.
                data: fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf()),
            },
            dir,
        })
    }

    /// The data root, made trusted (`up`: a pod is about to keep data there).
    pub fn data_root(&mut self) -> Result<PathBuf, StateError> {
        self.roots.data = trusted_dir(&self.roots.data, "--data-root")?;
        Ok(self.roots.data.clone())
    }

    pub fn pod_dir(&self, name: &str) -> PathBuf {
        self.roots.state_dir(name)
    }

    /// Creates pod `name`'s directory with its record `rec` in it, locked; fails if
    /// the name is taken. Nothing is left behind on failure.
    pub fn create_pod<T: Serialize>(&self, name: &str, rec: &T) -> Result<PodLock, StateError> {
        let tmp = self.roots.new_state_dir(name);
        let made = self.prepare(&tmp, rec).and_then(|lock| {
            let dir = self.pod_dir(name);
            match crate::sys::rename_noreplace(&tmp, &dir) {
                Ok(()) => Ok(lock),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    Err(StateError::InUse(name.to_string()))
                }
                Err(source) => Err(StateError::CreateDir { path: dir, source }),
            }
        });
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made
    }

    fn prepare<T: Serialize>(&self, tmp: &Path, rec: &T) -> Result<PodLock, StateError> {
        let _ = fs::remove_dir_all(tmp);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(tmp)
            .map_err(|source| StateError::CreateDir {
                path: tmp.to_path_buf(),
                source,
            })?;
        write_json(&tmp.join(crate::layout::RECORD), rec)?;
        let err = |source| StateError::Lock {
            path: tmp.to_path_buf(),
            source,
        };
        let dir = File::open(tmp).map_err(err)?;
        crate::sys::flock(&dir, false).map_err(err)?;
        Ok(PodLock(dir.into()))
    }

    /// Locks pod `name`'s directory, waiting while `up` or `down` holds it; NotFound
    /// if there is none (or it went while we waited).
    pub fn lock_pod(&self, name: &str) -> Result<PodLock, StateError> {
        // Waiting, a lock always comes (or an error).
        self.lock(name, true)?
            .ok_or_else(|| StateError::NotFound(name.into()))
    }

    /// Is pod `name`'s directory locked by someone else (`up` or its supervisor
    /// still making the pod, or a `down`)?
    pub fn pod_busy(&self, name: &str) -> bool {
        matches!(self.lock(name, false), Ok(None))
    }

    fn lock(&self, name: &str, wait: bool) -> Result<Option<PodLock>, StateError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.pod_dir(name);
        let err = |source| StateError::Lock {
            path: path.clone(),
            source,
        };
        let dir = match File::open(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(name.into()))
            }
            Err(e) => return Err(err(e)),
        };
        match crate::sys::flock(&dir, wait) {
            Err(e) if !wait && e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(None),
            r => r.map_err(err)?,
        }
        // Still the pod's directory, not removed (and perhaps made again) meanwhile?
        let same = match (dir.metadata(), fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            return Err(StateError::NotFound(name.into()));
        }
        Ok(Some(PodLock(dir.into())))
    }

    pub fn pods(&self) -> Vec<String> {
        subdirectories(&self.dir)
    }
}

/// The names of the directories in `dir` but hidden ones, sorted; none if it is not
/// there (a root's pods, the named volumes).
pub fn subdirectories(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// An exclusive flock on `path` (made if missing), held until dropped.
pub fn lock_file(path: &Path) -> Result<File, StateError> {
    let path = path.to_path_buf();
    let err = |source| StateError::Lock {
        path: path.clone(),
        source,
    };
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(err)?;
    crate::sys::flock(&f, true).map_err(err)?;
    Ok(f)
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
        path: path.into(),
        error,
    })
}

/// A small state file as text (`stop`).
pub fn read_text(path: &Path) -> Result<String, StateError> {
    let bytes = read_file(path)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A state file's bytes: a regular file of a sane size, or an error saying what it is.
fn read_file(path: &Path) -> Result<Vec<u8>, StateError> {
    use std::io::Read;
    let err = |source| StateError::Read {
        path: path.into(),
        source,
    };
    // Never through a symlink, and never waiting: a FIFO put in a file's place would
    // otherwise hold every reader in open(2) until a writer came.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let mut file = match opened {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(StateError::NotAFile { path: path.into() })
        }
        r => r.map_err(err)?,
    };
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(StateError::NotAFile { path: path.into() });
    }
    let size = meta.len();
    if size > MAX_STATE_FILE {
        return Err(StateError::TooLarge {
            path: path.into(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
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
