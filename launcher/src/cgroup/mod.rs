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

use crate::procfs::Mount;
use crate::spec::Limits;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The leaf of the pause process. Not a DNS-1123 label, so no container can clash.
pub const PAUSE_LEAF: &str = "_pause";

/// The extended attribute naming a pod cgroup's owner.
const OWNER_XATTR: &std::ffi::CStr = c"trusted.launcher.owner";

/// How to get a cgroup v2 with controllers, for those who lack one.
pub const HOW_TO_GET_CONTROLLERS: &str = "run launcher where controllers are delegated to it \
(a systemd unit or scope with Delegate=yes, e.g. systemd-run --scope -p Delegate=yes launcher ...), \
on a machine booted with a unified hierarchy (systemd.unified_cgroup_hierarchy=1)";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 file system is mounted (see /proc/self/mountinfo). Hint: mount -t cgroup2 none /sys/fs/cgroup")]
    NoCgroup2,
    #[error("{0} is not inside a cgroup2 mount")]
    NotCgroup2(PathBuf),
    #[error("the {controller} controller is not available in {cgroup} (cgroup.controllers: {available:?}); it is needed for the {controller} limit. Hint: {HOW_TO_GET_CONTROLLERS}")]
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
    #[error("{}", read_only_text(*.limits, mount))]
    ReadOnly { limits: bool, mount: PathBuf },
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

/// Where cgroup2 is mounted, from a mount table.
pub fn cgroup2_mount_in(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.point.clone())
}

pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mounts = crate::procfs::mounts().map_err(|source| CgroupError::Read {
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    cgroup2_mount_in(&mounts).ok_or(CgroupError::NoCgroup2)
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

/// Controllers enabled for every pod where the machine offers them, limits or not,
/// as the kubelet has them: what `top` reads (memory.current, memory.stat).
const ACCOUNTED: [&str; 1] = [memory::CONTROLLER];

/// Enables the accounted controllers `wanted` lacks in `parent`, where it can.
fn account(parent: &Path, wanted: &[&'static str]) {
    for c in ACCOUNTED.iter().filter(|c| !wanted.contains(c)) {
        let _ = enable(parent, c);
    }
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

/// A cgroup2 that refuses writes: a limit cannot be had there, nor a cgroup.
fn read_only(mount: &Path, limits: bool) -> CgroupError {
    CgroupError::ReadOnly {
        limits,
        mount: mount.to_path_buf(),
    }
}

fn read_only_text(limits: bool, mount: &Path) -> String {
    let mount = mount.display();
    if limits {
        format!("cannot set the pod's limits: the cgroup2 file system at {mount} is read-only here, as in a container started without --privileged. Hint: run this container with --privileged (a writable cgroup2 in its own cgroup namespace), or start the pod without --memory, --cpu, --cpu-request and --pids")
    } else {
        format!("the cgroup2 file system at {mount} is read-only here, as in a container started without --privileged (run it with --privileged for limits, and for a cgroup that ends whatever a container leaves behind)")
    }
}

/// Mounted read-only (statvfs ST_RDONLY), as cgroup2 is in an unprivileged container.
fn mounted_read_only(mount: &Path) -> bool {
    use nix::sys::statvfs::{statvfs, FsFlags};
    statvfs(mount).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

/// Whether the top of the cgroup2 mount at `mount` is the root of this process's
/// cgroup namespace (the mount's root, field 4 of mountinfo, is "/") while not being
/// the machine's root cgroup (which has no `cgroup.type`): what a container with its
/// own cgroup namespace sees.
fn is_namespace_root(mount: &Path) -> bool {
    let Ok(mounts) = crate::procfs::mounts() else {
        return false;
    };
    let root_of_mount = mounts
        .into_iter()
        .find(|m| m.fstype == "cgroup2" && m.point == mount)
        .map(|m| m.root);
    root_of_mount.is_some_and(|r| r == Path::new("/")) && mount.join("cgroup.type").exists()
}

/// The leaf that the processes of a cgroup namespace's root move to, as
/// docker-in-docker and k3s name it.
pub const INIT_LEAF: &str = "init";

/// Processes moved out of the root of the cgroup namespace by [`prepare`].
#[derive(Debug)]
pub struct Evacuation {
    pub from: PathBuf,
    pub to: PathBuf,
    pub pids: Vec<i32>,
}

impl std::fmt::Display for Evacuation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pids: Vec<String> = self.pids.iter().map(i32::to_string).collect();
        write!(
            f,
            "moved {} process{} ({}) from {}, the root of this cgroup namespace, to {}: cgroup v2 passes controllers on only from a cgroup without processes",
            self.pids.len(),
            if self.pids.len() == 1 { "" } else { "es" },
            pids.join(", "),
            self.from.display(),
            self.to.display()
        )
    }
}

fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    Ok(read(dir, "cgroup.procs")?
        .lines()
        .filter_map(|p| p.trim().parse().ok())
        .collect())
}

/// Moves every process of `top` into its `init` leaf, again while new ones appear;
/// one that exited meanwhile is no longer there to move.
fn evacuate(top: &Path, moved: &mut Vec<i32>) -> Result<(), CgroupError> {
    let to = top.join(INIT_LEAF);
    match fs::create_dir(&to) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(CgroupError::Create {
                path: to,
                source: e,
            })
        }
        _ => {}
    }
    for _ in 0..100 {
        let pids = procs(top)?;
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            match write(&to, "cgroup.procs", &pid.to_string()) {
                Ok(()) if !moved.contains(&pid) => moved.push(pid),
                Ok(()) => {}
                Err(CgroupError::Write { source, .. })
                    if matches!(source.raw_os_error(), Some(libc::ESRCH | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Makes `parent` and its ancestors below the mount exist, each passing on the
/// controllers that a pod with these limits needs. Where the top of the mount is the
/// root of a cgroup namespace that holds processes (inside a privileged container),
/// they are moved to its `init` leaf first, which is said in the answer. Done by `up`
/// before the pod exists (so that the move can be told), and again, as a no-op, by
/// [`PodCgroup::create`].
pub fn prepare(
    mount: &Path,
    parent: &Path,
    limits: &Limits,
    containers: &[(&str, &Limits)],
) -> Result<Option<Evacuation>, CgroupError> {
    let rel = parent
        .strip_prefix(mount)
        .map_err(|_| CgroupError::NotCgroup2(parent.to_path_buf()))?;
    let wanted = wanted(limits, containers);
    if mounted_read_only(mount) {
        return Err(read_only(mount, !wanted.is_empty()));
    }
    let mut moved = Vec::new();
    let mut at = mount.to_path_buf();
    let mut parts = rel.components();
    loop {
        for c in &wanted {
            let mut tries = 0;
            loop {
                match enable(&at, c) {
                    Err(CgroupError::InternalProcesses { .. })
                        if at == mount && tries < 5 && is_namespace_root(mount) =>
                    {
                        tries += 1;
                        evacuate(&at, &mut moved)?;
                    }
                    r => break r?,
                }
            }
        }
        account(&at, &wanted);
        let Some(part) = parts.next() else { break };
        at.push(part);
        match fs::create_dir(&at) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(CgroupError::Create {
                    path: at.clone(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok((!moved.is_empty()).then(|| Evacuation {
        from: mount.to_path_buf(),
        to: mount.join(INIT_LEAF),
        pids: moved,
    }))
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
        prepare(mount, parent, limits, containers)?;
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

    /// Pause's leaf, made empty: pause is cloned straight into it
    /// (CLONE_INTO_CGROUP), never moved there. A move takes the kernel's cgroup
    /// threadgroup lock for writing, an RCU grace period: 6 ms of the 18 a pod took
    /// to start on this project's machine.
    pub fn pause_leaf(&self) -> Result<fs::File, CgroupError> {
        let leaf = self.leaf(PAUSE_LEAF);
        fs::create_dir(&leaf).map_err(|source| CgroupError::Create {
            path: leaf.clone(),
            source,
        })?;
        fs::File::open(&leaf).map_err(|source| CgroupError::Create { path: leaf, source })
    }

    /// Passes the controllers on to the leaves (the pod's cgroup holds no process
    /// itself: pause is in its leaf) and makes one leaf per container with its own
    /// limits. The caller tears down on error.
    pub fn populate(
        &self,
        limits: &Limits,
        containers: &[(&str, &Limits)],
    ) -> Result<(), CgroupError> {
        let wanted = wanted(limits, containers);
        // Leaves get the controllers too, so each container has its own memory.events.
        for c in &wanted {
            enable(&self.dir, c)?;
        }
        account(&self.dir, &wanted);
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

    /// Marks the cgroup as the pod of `owner` (`layout::cgroup_owner`: its state root
    /// and uid), in a trusted.* extended attribute: only CAP_SYS_ADMIN in the
    /// machine's user namespace sets or reads those, and a pod sees its cgroupfs
    /// read-only. Best effort: a cgroupfs without xattrs leaves it unmarked.
    pub fn set_owner(&self, owner: &str) {
        let _ = crate::sys::set_xattr(&self.dir, OWNER_XATTR, owner.as_bytes());
    }

    /// Whose pod this is, if the cgroup says: None when it is unmarked.
    pub fn owner(&self) -> Option<String> {
        let value = crate::sys::get_xattr(&self.dir, OWNER_XATTR).ok()?;
        Some(String::from_utf8_lossy(&value).into_owned())
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
        wait_empty(&self.dir, Instant::now() + limit);
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

/// Waits until nothing is left in the cgroup `dir` (`populated 0` in its
/// cgroup.events) or `deadline` passes; true if it emptied. Sleeps in poll(2) on
/// cgroup.events, which the kernel marks changed (POLLPRI) when that flips, so it
/// returns as the last process goes. A cgroup that is not there is empty.
pub fn wait_empty(dir: &Path, deadline: Instant) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::{Read, Seek};
    let Ok(mut events) = fs::File::open(dir.join("cgroup.events")) else {
        return true;
    };
    let mut text = String::new();
    loop {
        text.clear();
        // Reading (from the start) is what re-arms the notification.
        if events.rewind().is_err() || events.read_to_string(&mut text).is_err() {
            return true;
        }
        if !text.lines().any(|l| l == "populated 1") {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&events),
            PollFlags::POLLPRI,
        )];
        let _ = poll(&mut fds, PollTimeout::from(ms));
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
    let pids = procs(dir).unwrap_or_default();
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
        let of = |text| cgroup2_mount_in(&crate::procfs::parse_mountinfo(text));
        assert_eq!(of(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(of("1 0 0:1 / / rw - ext4 /dev/vda rw\n"), None);
    }

    /// A fake cgroup tree: files the kernel would provide, in a temp dir.
    fn fake_tree(controllers: &str) -> crate::testing::TempDir {
        let root = crate::testing::TempDir::new(&format!("cgfake-{controllers}").replace(' ', "_"));
        fs::create_dir_all(root.join("launcher")).unwrap();
        for dir in [root.to_path_buf(), root.join("launcher")] {
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
    }
}
