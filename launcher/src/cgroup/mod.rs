//! cgroup v2, laid out the way the kubelet lays out a pod:
//!
//! ```text
//! <parent>/<pod>/            limits of the pod (memory.max, cpu.max, cpu.weight, pids.max)
//! <parent>/<pod>/_pause/     the pause process
//! <parent>/<pod>/<container> one leaf per container (memory.oom.group = 1)
//! ```
//!
//! Rules from Documentation/admin-guide/cgroup-v2.rst that order the steps:
//! - a controller is usable in a cgroup only if every ancestor lists it in
//!   `cgroup.subtree_control`, and it can be listed there only if it is in the
//!   ancestor's own `cgroup.controllers`;
//! - no internal processes: a non-root cgroup with processes cannot enable
//!   controllers for its children (EBUSY), so processes only ever live in leaves;
//! - `cgroup.kill` (Linux >= 5.14) SIGKILLs the whole subtree; a cgroup can be
//!   removed once `cgroup.events` says `populated 0`.
//!
//! Without any limit asked, no controller is enabled: the pod still gets its cgroup
//! (membership, cgroup.kill), also on a cgroup2 that has no controllers at all.

pub mod cpu;
pub mod devices;
pub mod memory;
pub mod pids;

use crate::spec::Limits;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The leaf of the pause process. Not a DNS-1123 label, so no container can clash.
pub const PAUSE_LEAF: &str = "_pause";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 file system is mounted (see /proc/self/mountinfo). Hint: mount -t cgroup2 none /sys/fs/cgroup")]
    NoCgroup2,
    #[error("{0} is not inside a cgroup2 mount")]
    NotCgroup2(PathBuf),
    #[error("the {controller} controller is not available in {cgroup} (cgroup.controllers: {available:?}); it is needed for the {controller} limit")]
    ControllerUnavailable {
        controller: &'static str,
        cgroup: PathBuf,
        available: String,
    },
    #[error("cannot enable the {controller} controller in {cgroup}: it holds processes and cgroup v2 forbids controllers below a cgroup with processes. Hint: move them to a leaf cgroup, or pass --cgroup-parent")]
    InternalProcesses {
        controller: &'static str,
        cgroup: PathBuf,
    },
    #[error("failed to write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("failed to read {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("failed to create cgroup {path}")]
    Create { path: PathBuf, source: io::Error },
    #[error("failed to remove cgroup {path}")]
    Remove { path: PathBuf, source: io::Error },
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Where cgroup2 is mounted, from a mountinfo text (field 5 is the mount point, the
/// file system type follows the " - " separator).
pub fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let mount_point = pre.split(' ').nth(4)?;
        (post.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|source| CgroupError::Read {
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    cgroup2_mount_in(&info).ok_or(CgroupError::NoCgroup2)
}

fn controllers_for(limits: &Limits) -> Vec<&'static str> {
    let mut c = Vec::new();
    if limits.memory.is_some() {
        c.push(memory::CONTROLLER);
    }
    if limits.cpu_milli.is_some() || limits.cpu_request_milli.is_some() {
        c.push(cpu::CONTROLLER);
    }
    if limits.pids.is_some() {
        c.push(pids::CONTROLLER);
    }
    c
}

/// The controllers a pod with these limits needs.
fn wanted(limits: &Limits, containers: &[(&str, &Limits)]) -> Vec<&'static str> {
    let mut wanted = controllers_for(limits);
    for (_, l) in containers {
        for c in controllers_for(l) {
            if !wanted.contains(&c) {
                wanted.push(c);
            }
        }
    }
    wanted
}

/// Makes `controller` usable in `child`'s cgroup: listed in `parent`'s subtree_control.
fn enable(parent: &Path, controller: &'static str) -> Result<(), CgroupError> {
    let subtree = read(parent, "cgroup.subtree_control")?;
    if subtree.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    let available = read(parent, "cgroup.controllers")?;
    if !available.split_whitespace().any(|c| c == controller) {
        return Err(CgroupError::ControllerUnavailable {
            controller,
            cgroup: parent.to_path_buf(),
            available: available.trim().to_string(),
        });
    }
    write(parent, "cgroup.subtree_control", &format!("+{controller}")).map_err(|e| match e {
        CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
            CgroupError::InternalProcesses {
                controller,
                cgroup: parent.to_path_buf(),
            }
        }
        e => e,
    })
}

/// Writes the limits that are set into `dir`.
fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    if let Some(bytes) = limits.memory {
        memory::set_max(dir, bytes)?;
    }
    if let Some(milli) = limits.cpu_milli {
        cpu::set_max(dir, milli)?;
    }
    if let Some(milli) = limits.cpu_request_milli {
        cpu::set_weight(dir, milli)?;
    }
    if let Some(n) = limits.pids {
        pids::set_max(dir, n)?;
    }
    Ok(())
}

/// A pod's cgroup directory and its leaves.
#[derive(Debug, Clone)]
pub struct PodCgroup {
    pub dir: PathBuf,
}

impl PodCgroup {
    pub fn leaf(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates `<parent>/<pod>` with the pod's limits, and makes every controller the
    /// pod or its containers need usable in it. No leaves yet: pause is born in the pod's
    /// cgroup (to root the pod's cgroup namespace there), then [`PodCgroup::populate`]
    /// moves it to its leaf and makes the containers' leaves. On error, removes what it
    /// made, so bad input leaves no cgroup behind.
    pub fn create(
        mount: &Path,
        parent: &Path,
        pod: &str,
        limits: &Limits,
        containers: &[(&str, &Limits)],
    ) -> Result<PodCgroup, CgroupError> {
        let rel = parent
            .strip_prefix(mount)
            .map_err(|_| CgroupError::NotCgroup2(parent.to_path_buf()))?;
        let wanted = wanted(limits, containers);
        // Every ancestor from the mount down to the parent passes the controllers on.
        let mut at = mount.to_path_buf();
        for part in rel.components() {
            for c in &wanted {
                enable(&at, c)?;
            }
            at.push(part);
            if !at.exists() {
                fs::create_dir(&at).map_err(|source| CgroupError::Create {
                    path: at.clone(),
                    source,
                })?;
            }
        }
        for c in &wanted {
            enable(&at, c)?;
        }
        let dir = parent.join(pod);
        fs::create_dir(&dir).map_err(|source| CgroupError::Create {
            path: dir.clone(),
            source,
        })?;
        let cg = PodCgroup { dir };
        if let Err(e) = apply(&cg.dir, limits) {
            let _ = cg.remove(Duration::from_secs(1));
            return Err(e);
        }
        Ok(cg)
    }

    /// Moves `pause` from the pod's cgroup to its leaf, then passes the controllers on
    /// to the leaves (which needs the pod's cgroup empty) and makes one leaf per
    /// container with its own limits. The caller tears down on error.
    pub fn populate(
        &self,
        pause: i32,
        limits: &Limits,
        containers: &[(&str, &Limits)],
    ) -> Result<(), CgroupError> {
        let leaf = self.leaf(PAUSE_LEAF);
        fs::create_dir(&leaf).map_err(|source| CgroupError::Create {
            path: leaf.clone(),
            source,
        })?;
        write(&leaf, "cgroup.procs", &pause.to_string())?;
        let wanted = wanted(limits, containers);
        // Leaves get the controllers too, so each container has its own memory.events.
        for c in &wanted {
            enable(&self.dir, c)?;
        }
        for (name, own) in containers {
            let leaf = self.leaf(name);
            fs::create_dir(&leaf).map_err(|source| CgroupError::Create {
                path: leaf.clone(),
                source,
            })?;
            apply(&leaf, own)?;
            if wanted.contains(&memory::CONTROLLER) {
                memory::set_oom_group(&leaf)?;
            }
        }
        Ok(())
    }

    pub fn populated(dir: &Path) -> bool {
        read(dir, "cgroup.events")
            .map(|e| e.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    /// SIGKILLs everything in the pod (cgroup.kill, Linux >= 5.14).
    pub fn kill(&self) -> Result<(), CgroupError> {
        write(&self.dir, "cgroup.kill", "1")
    }

    /// SIGKILLs everything in one container's leaf, which stays usable.
    ///
    /// Not with cgroup.kill: on this project's Linux 6.18 host, once a cgroup was
    /// killed that way every later clone3(CLONE_INTO_CGROUP) into it is killed at
    /// birth, and a container's leaf takes its restarts. So: pidfd SIGKILLs from
    /// cgroup.procs, again while new pids turn up (a process forking meanwhile).
    pub fn kill_leaf(&self, name: &str) {
        let leaf = self.leaf(name);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let now = signal_procs(&leaf, libc::SIGKILL);
            if now.iter().all(|p| seen.contains(p)) {
                return;
            }
            seen.extend(now);
        }
    }

    /// Waits up to `limit` for the pod to empty, then removes leaves and pod.
    /// Missing directories are fine: removal is idempotent.
    pub fn remove(&self, limit: Duration) -> Result<(), CgroupError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        while Self::populated(&self.dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let leaves = match fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(CgroupError::Read {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        for leaf in leaves.flatten() {
            if leaf.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir(&leaf.path())?;
            }
        }
        rmdir(&self.dir)
    }
}

fn rmdir(path: &Path) -> Result<(), CgroupError> {
    // An exited process can linger in cgroup.procs for a moment after it is reaped.
    let mut tries = 0;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Sends `sig` to every process in the cgroup `dir`, each through a pidfd so a
/// recycled pid is never hit; returns the pids it found.
pub fn signal_procs(dir: &Path, sig: i32) -> Vec<i32> {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let pids: Vec<i32> = procs
        .lines()
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    for &pid in &pids {
        if let Ok(fd) = crate::sys::pidfd_open(pid) {
            let _ = crate::sys::pidfd_send_signal(&fd, sig);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_wherever_it_is_mounted() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup2_mount_in("1 0 0:1 / / rw - ext4 /dev/vda rw\n"),
            None
        );
    }

    /// A fake cgroup tree: files the kernel would provide, in a temp dir.
    fn fake_tree(controllers: &str) -> PathBuf {
        let root = std::env::temp_dir()
            .join(format!("cgfake-{}-{controllers}", std::process::id()).replace(' ', "_"));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("launcher")).unwrap();
        for dir in [root.clone(), root.join("launcher")] {
            fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
            fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        root
    }

    #[test]
    fn a_missing_controller_is_named_with_its_cgroup() {
        let root = fake_tree("cpu pids");
        let limits = Limits {
            memory: Some(1 << 20),
            ..Default::default()
        };
        let err = PodCgroup::create(
            &root,
            &root.join("launcher"),
            "p",
            &limits,
            &[("a", &Limits::default())],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("the memory controller is not available in "),
            "{msg}"
        );
        assert!(msg.contains(&root.display().to_string()));
        assert!(!root.join("launcher/p").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
