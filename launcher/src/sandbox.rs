//! The pod's sandbox: what holds a pod together besides its processes. It is made in
//! one place, in this order, and taken apart by one teardown:
//!
//! 1. the pod's cgroup `<parent>/<pod>/` with the pod's limits and, unless the pod is
//!    privileged, the devices it may use (`cgroup`, `cgroup::devices`);
//! 2. pause, in new PID, network, IPC, UTS, mount and cgroup namespaces, born in the
//!    pod's cgroup (the root of its cgroup namespace), with what the pod may see of
//!    the machine mounted (`namespaces`, `mounts`);
//! 3. pause moved to `_pause/`, and one leaf per container (`cgroup`).
//!
//! The pod's record (`state`), which names the cgroup, is on disk before step 1, and
//! everything the sandbox holds lives inside the pod's cgroup, pause included. So
//! [`teardown`] needs nothing but that cgroup: it serves a setup that failed half way,
//! a pod that ended, and `down` after the supervisor died, and running it twice is
//! harmless. Later steps (the network, volumes) come with their own undo.
//!
//! Where cgroup2 is read-only (a container started without --privileged) and the pod
//! asks for no limit, the pod has no cgroup: steps 1 and 3 are left out, and the pod
//! holds together by its PID namespace, which [`teardown`] ends through pause.

use crate::cgroup::{self, PodCgroup, PAUSE_LEAF};
use crate::mounts::Mounts;
use crate::namespaces::{self, Pause};
use crate::state::{PodRecord, ProcRef};
use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Sandbox {
    pub cgroup: Option<PodCgroup>,
    pub pause: Pause,
}

impl Sandbox {
    /// Creates the sandbox of `rec`'s pod, whose record lives under `state_root`; on
    /// failure, undoes what it had made.
    pub fn create(rec: &PodRecord, mount: &Path, state_root: &Path) -> Result<Sandbox> {
        let spec = &rec.spec;
        let mut hidden = vec![state_root];
        let default_root = Path::new(crate::state::DEFAULT_ROOT);
        if default_root != state_root && default_root.is_dir() {
            hidden.push(default_root);
        }
        let mounts = Mounts::pod(&hidden, spec.privileged);
        let Some(dir) = &rec.cgroup else {
            let pause = namespaces::start_pause(&rec.pause_binary, &spec.hostname, None, &mounts)?;
            return Ok(Sandbox {
                cgroup: None,
                pause,
            });
        };
        let parent = dir.parent().unwrap_or(mount);
        let leaves: Vec<(&str, &crate::spec::Limits)> = spec
            .all_containers()
            .map(|c| (c.name.as_str(), &c.limits))
            .collect();
        let cgroup = PodCgroup::create(mount, parent, &spec.name, &spec.limits, &leaves)?;
        let made = File::open(&cgroup.dir)
            .with_context(|| format!("failed to open cgroup {}", cgroup.dir.display()))
            .and_then(|dir| {
                if !spec.privileged {
                    cgroup::devices::restrict(&dir).with_context(|| {
                        format!(
                            "failed to restrict the pod's devices (a BPF device program on {})",
                            cgroup.dir.display()
                        )
                    })?;
                }
                Ok(namespaces::start_pause(
                    &rec.pause_binary,
                    &spec.hostname,
                    Some(&dir),
                    &mounts,
                )?)
            })
            .and_then(|pause| {
                cgroup.populate(pause.pid, &spec.limits, &leaves)?;
                Ok(pause)
            });
        match made {
            Ok(pause) => Ok(Sandbox {
                cgroup: Some(cgroup),
                pause,
            }),
            Err(e) => {
                let _ = teardown_cgroup(&cgroup, Duration::ZERO);
                Err(e)
            }
        }
    }
}

/// Takes a pod's sandbox apart, whatever is left of it, found through its cgroup or,
/// for a pod without one, through pause. Idempotent.
pub fn teardown(cgroup: Option<&PodCgroup>, pause: Option<ProcRef>, grace: Duration) -> Result<()> {
    match (cgroup, pause) {
        (Some(cg), _) => teardown_cgroup(cg, grace),
        (None, Some(pause)) => {
            teardown_pid_namespace(pause, grace);
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// SIGTERM to every container's processes, up to `grace` for them to go, SIGKILL to
/// everything (pause last, which takes the pod's namespaces with it), then the cgroups
/// are removed.
fn teardown_cgroup(cg: &PodCgroup, grace: Duration) -> Result<()> {
    if !cg.dir.exists() {
        return Ok(());
    }
    let leaves: Vec<std::path::PathBuf> = std::fs::read_dir(&cg.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != PAUSE_LEAF)
        .map(|e| e.path())
        .collect();
    if !grace.is_zero() {
        for leaf in &leaves {
            cgroup::signal_procs(leaf, libc::SIGTERM);
        }
        // All must empty by the same deadline, so waiting for one after the other is
        // waiting for all.
        let deadline = Instant::now() + grace;
        for leaf in &leaves {
            cgroup::wait_empty(leaf, deadline);
        }
    }
    // Held from before the kill: pause's pidfd turns readable once it is really gone,
    // which for the init of a PID namespace is after everything in the pod exited.
    let pause = std::fs::read_to_string(cg.leaf(PAUSE_LEAF).join("cgroup.procs"))
        .ok()
        .and_then(|p| p.lines().next()?.trim().parse::<i32>().ok())
        .and_then(|pid| crate::sys::pidfd_open(pid).ok());
    if cg.kill().is_err() {
        // No cgroup.kill (Linux < 5.14): SIGKILL what is there, pause last.
        for leaf in leaves.iter().chain(std::iter::once(&cg.leaf(PAUSE_LEAF))) {
            cgroup::signal_procs(leaf, libc::SIGKILL);
        }
    }
    cg.remove(Duration::from_secs(10))?;
    if let Some(fd) = pause {
        crate::sys::pidfd_wait(&fd, Duration::from_secs(5));
    }
    Ok(())
}

/// A pod without a cgroup: SIGTERM to every process in pause's PID namespace, up to
/// `grace` for them to go, then SIGKILL to pause, which takes the namespace, and
/// whatever is still in it, with it.
fn teardown_pid_namespace(pause: ProcRef, grace: Duration) {
    if !pause.alive() {
        return;
    }
    let Ok(pause_fd) = crate::sys::pidfd_open(pause.pid) else {
        return;
    };
    if !grace.is_zero() {
        let members: Vec<_> = pid_namespace_members(pause.pid)
            .into_iter()
            .filter_map(|pid| crate::sys::pidfd_open(pid).ok())
            .collect();
        for fd in &members {
            let _ = crate::sys::pidfd_send_signal(fd, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for fd in &members {
            crate::sys::pidfd_wait(fd, deadline.saturating_duration_since(Instant::now()));
        }
    }
    let _ = crate::sys::pidfd_send_signal(&pause_fd, libc::SIGKILL);
    crate::sys::pidfd_wait(&pause_fd, Duration::from_secs(5));
}

/// The processes in `pause`'s PID namespace, pause excepted.
fn pid_namespace_members(pause: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(pods) = ns(&pause.to_string()) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid: i32 = name.parse().ok()?;
            (pid != pause && ns(&name).as_ref() == Some(&pods)).then_some(pid)
        })
        .collect()
}

/// The supervisor of the pod in `cg`: pause's parent, if it is still a launcher.
/// For when the pod's record is gone or unreadable.
pub fn supervisor_of(cg: &PodCgroup) -> Option<i32> {
    let procs = std::fs::read_to_string(cg.leaf(PAUSE_LEAF).join("cgroup.procs")).ok()?;
    let pause: i32 = procs.lines().next()?.trim().parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pause}/status")).ok()?;
    let ppid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()?;
    let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok()?;
    let me = std::env::current_exe().ok()?;
    (ppid > 1 && exe == me).then_some(ppid)
}
