//! The pod's sandbox: what holds a pod together besides its processes. It is made in
//! one place, in this order, and taken apart by one teardown:
//!
//! 1. the pod's cgroup `<parent>/<pod>/` with the pod's limits and, unless the pod is
//!    privileged, the devices it may use (`cgroup`, `cgroup::devices`);
//! 2. pause, in new PID, network, IPC, UTS, mount and cgroup namespaces, born in the
//!    pod's cgroup (the root of its cgroup namespace), with what the pod may see of
//!    the machine mounted (`namespaces`, `mounts`);
//! 3. pause moved to `_pause/`, and one leaf per container (`cgroup`);
//! 4. the pod's network namespace pinned and attached to its CNI network (`network`).
//!
//! The pod's record (`state`), which names the cgroup and the network attachment, is
//! on disk before step 1, and everything the sandbox holds lives inside the pod's
//! cgroup, pause included, or is named by the record. So [`teardown`] needs nothing
//! but those ([`Remains`]): it serves a setup that failed half way, a pod that ended,
//! and `down` after the supervisor died, and running it twice is harmless.
//!
//! Where cgroup2 is read-only (a container started without --privileged) and the pod
//! asks for no limit, the pod has no cgroup: steps 1 and 3 are left out, and the pod
//! holds together by its PID namespace, which [`teardown`] ends through pause.

use crate::cgroup::{self, PodCgroup, PAUSE_LEAF};
use crate::mounts::Mounts;
use crate::namespaces::{self, Pause};
use crate::network::{self, Attachment};
use crate::state::{PodRecord, ProcRef};
use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Sandbox {
    pub cgroup: Option<PodCgroup>,
    pub pause: Pause,
    /// The record's attachment, with ADD's result.
    pub network: Option<Attachment>,
}

/// What is left of a pod for [`teardown`] to take apart, found through its record or,
/// without one, its cgroup.
#[derive(Default)]
pub struct Remains<'a> {
    pub cgroup: Option<&'a PodCgroup>,
    pub pause: Option<ProcRef>,
    /// The network to DEL, and the pod's directory (where its network lock is). The
    /// caller is in the host's network and PID namespaces (`sys::leave_pod`).
    pub network: Option<(&'a Attachment, &'a Path)>,
}

impl Sandbox {
    /// Creates the sandbox of `rec`'s pod, whose record lives under `state_root`; on
    /// failure, undoes what it had made.
    pub fn create(rec: &PodRecord, mount: &Path, state_root: &Path) -> Result<Sandbox> {
        let mut sb = Sandbox::namespaces(rec, mount, state_root)?;
        let Some(att) = &mut sb.network else {
            return Ok(sb);
        };
        let pod_dir = state_root.join(&rec.spec.name);
        if let Err(e) = network::attach(att, sb.pause.pid, &pod_dir) {
            let _ = teardown(
                Remains {
                    cgroup: sb.cgroup.as_ref(),
                    pause: ProcRef::of(sb.pause.pid),
                    ..Default::default()
                },
                Duration::ZERO,
            );
            return Err(e);
        }
        Ok(sb)
    }

    /// Steps 1-3: the cgroup and pause in its namespaces.
    fn namespaces(rec: &PodRecord, mount: &Path, state_root: &Path) -> Result<Sandbox> {
        let spec = &rec.spec;
        // The runtime's state and data, this pod's own included, are none of its
        // business: the roots in use, and the default ones if they are elsewhere.
        let data_root = rec.data_dir.parent().and_then(Path::parent);
        let mut hidden = vec![state_root];
        hidden.extend(data_root);
        for default in [crate::state::DEFAULT_ROOT, crate::state::DEFAULT_DATA_ROOT] {
            let default = Path::new(default);
            if !hidden.contains(&default) && default.is_dir() {
                hidden.push(default);
            }
        }
        let mounts = Mounts::pod(&hidden, spec.privileged);
        let flags = namespaces::pod_flags(spec);
        let network = rec.network.clone();
        let Some(dir) = &rec.cgroup else {
            let pause =
                namespaces::start_pause(&rec.pause_binary, &spec.hostname, None, &mounts, flags)?;
            return Ok(Sandbox {
                cgroup: None,
                pause,
                network,
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
                    flags,
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
                network,
            }),
            Err(e) => {
                let _ = teardown_cgroup(&cgroup, Duration::ZERO);
                Err(e)
            }
        }
    }
}

/// Takes a pod's sandbox apart, whatever is left of it: its processes (found through
/// its cgroup or, for a pod without one, through pause) and cgroups, then its network
/// (DEL, as the kubelet stops a sandbox: after its containers). Idempotent.
pub fn teardown(remains: Remains, grace: Duration) -> Result<()> {
    let ended = match (remains.cgroup, remains.pause) {
        (Some(cg), _) => teardown_cgroup(cg, grace),
        (None, Some(pause)) => {
            teardown_pid_namespace(pause, grace);
            Ok(())
        }
        (None, None) => Ok(()),
    };
    let detached = match remains.network {
        Some((att, pod_dir)) => network::detach(att, pod_dir),
        None => Ok(()),
    };
    ended.and(detached)
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
