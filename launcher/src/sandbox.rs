//! The pod's sandbox: the one owner of everything a pod has besides its processes.
//! It is made in one place, in this order, and taken apart by one teardown:
//!
//! 1. the pod's volumes in its data directory: emptyDirs, the tmpfs of file volumes,
//!    claims, the mount points its containers need (`volumes`);
//! 2. the pod's cgroup `<parent>/<pod>/` with the pod's limits and, unless the pod is
//!    privileged, the devices it may use (`cgroup`, `cgroup::devices`);
//! 3. pause, in new PID, network, IPC, UTS, mount and cgroup namespaces, born in the
//!    pod's cgroup (the root of its cgroup namespace), with what the pod may see of
//!    the machine mounted (`namespaces`, `mounts`); its network, IPC and UTS
//!    namespaces are made [`Ahead`], on a thread, while the record is written and
//!    steps 1 and 2 run; the device filter is loaded and put on the cgroup while
//!    pause's child makes its mounts, and the steps below run meanwhile too, up to
//!    the first that needs pause running ([`Sandbox::pause_running`]);
//! 4. one cgroup leaf per container, pause's made before its clone (`cgroup`);
//! 5. the pod's network namespace pinned and attached to its CNI network (`network`);
//! 6. the files of its configMap, secret and downwardAPI volumes, which may name the
//!    pod's addresses.
//!
//! The pod's record (`record`), which names the cgroup and the network attachment,
//! is on disk before step 1, and everything the sandbox holds lives inside the pod's
//! cgroup, pause included, under the paths `layout` gives from the pod's name and
//! uid, or is named by the record. So [`teardown`] needs nothing but those
//! ([`Remains`]): it serves a setup that failed half way, a pod that ended, and
//! `down` after the supervisor died; running it twice is harmless.
//!
//! Where cgroup2 is read-only (a container started without --privileged) and the pod
//! asks for no limit, the pod has no cgroup: steps 2 and 4 are left out, and the pod
//! holds together by its PID namespace, which [`teardown`] ends through pause.

use crate::cgroup::{self, PodCgroup, PAUSE_LEAF};
use crate::layout::{PodPaths, Roots, DEFAULT_DATA_ROOT, DEFAULT_STATE_ROOT};
use crate::mounts::Mounts;
use crate::namespaces::{self, Pause};
use crate::network::{self, Attachment};
use crate::record::PodRecord;
use crate::spec::{Inputs, Resolved};
use crate::state::ProcRef;
use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::{Component, Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Sandbox {
    pub cgroup: Option<PodCgroup>,
    pub pause: Pause,
    /// Pause's child still making its mounts, until [`Sandbox::pause_running`].
    pub starting: Option<namespaces::Starting>,
    /// Warning events of the making (reason, message), for the pod's events.
    pub warnings: Vec<(&'static str, String)>,
}

/// What of a pod's sandbox needs neither its cgroup nor its record: its network, IPC
/// and UTS namespaces (a new network namespace is the costliest step of a pod's
/// start, ~1 ms here), made on a thread of its own while the supervisor writes the
/// record and makes the cgroup. [`Sandbox::create`] waits for it right before
/// pause's clone.
pub struct Ahead(JoinHandle<Result<Vec<(libc::c_int, File)>>>);

impl Ahead {
    /// Starts the work for `rec`'s pod. The caller blocks the signals it handles
    /// first: the thread inherits its signal mask, and a signal sent to the process
    /// must not end there.
    pub fn start(rec: &PodRecord) -> Result<Ahead> {
        let spec = &rec.spec;
        let flags = namespaces::pod_flags(spec);
        let hostname = crate::names::uts_hostname(spec);
        let work = move || Ok(namespaces::make_ahead(flags, &hostname)?);
        Ok(Ahead(thread("namespaces", work)?))
    }

    /// The namespaces, once made.
    fn namespaces(self) -> Result<Vec<(libc::c_int, File)>> {
        join(self.0)
    }
}

/// Runs `work` on a thread named `name`. Its stack is mapped, not resident: 256 KiB
/// leaves room for an error's backtrace (RUST_BACKTRACE) at no cost.
fn thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<JoinHandle<Result<T>>> {
    (std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024))
    .spawn(work)
    .with_context(|| format!("failed to start a thread ({name})"))
}

/// Waits for a thread of [`thread`].
fn join<T>(thread: JoinHandle<Result<T>>) -> Result<T> {
    (thread.join()).unwrap_or_else(|_| Err(anyhow::anyhow!("a thread of the setup panicked")))
}

/// What is left of a pod for [`teardown`] to take apart: found through its record
/// or, without one, its name.
pub struct Remains<'a> {
    /// The pod's state directory, and where its network is pinned and locked.
    pub state: PathBuf,
    pub netns_pin: PathBuf,
    pub network_lock: PathBuf,
    /// The pod's paths by uid: its own, or without a record those of whatever pods
    /// of its name left data behind. Only uids as the runtime makes them: a record
    /// cannot name a directory outside the data root.
    pub pods: Vec<PodPaths>,
    pub cgroup: Option<PodCgroup>,
    pub pause: Option<ProcRef>,
    /// The network to DEL. The caller is in the host's network and PID namespaces
    /// (`sys::leave_pod`).
    pub network: Option<&'a Attachment>,
}

/// What a teardown leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the pod is gone (`down`, a foreground pod's end, a failed setup).
    Nothing,
    /// The pod's state and data, for `status` and `logs` after a detached pod ended.
    Files,
}

impl<'a> Remains<'a> {
    /// The pod of `rec`, under `roots`. Its cgroup is taken only if it is one the
    /// runtime could have made for it (an absolute path under the cgroup2 mount
    /// without `..`, named for the pod) and no other state root's.
    pub fn of_record(rec: &'a PodRecord, roots: &Roots) -> Remains<'a> {
        let cgroup = rec
            .cgroup
            .as_deref()
            .filter(|dir| is_pod_cgroup(dir, &rec.spec.name))
            .map(|dir| PodCgroup {
                dir: dir.to_path_buf(),
            })
            .filter(|cg| ours(cg, &roots.state));
        // A uid not as the runtime makes them joins no path: the pod's data is found
        // by its name then.
        let mut remains = match crate::layout::valid_uid(&rec.facts.uid) {
            true => Remains::of_pod(rec.paths(roots), None, None),
            false => Remains::of_name(roots, &rec.spec.name, None),
        };
        remains.cgroup = cgroup;
        remains.pause = rec.pause;
        remains.network = rec.network.as_ref();
        remains
    }

    /// The pod at `paths`, its `cgroup` and `network` known (the supervisor's own).
    pub fn of_pod(
        paths: PodPaths,
        cgroup: Option<PodCgroup>,
        network: Option<&'a Attachment>,
    ) -> Remains<'a> {
        Remains {
            state: paths.state.clone(),
            netns_pin: paths.netns_pin(),
            network_lock: paths.network_lock(),
            pods: vec![paths],
            cgroup,
            pause: None,
            network,
        }
    }

    /// Pod `name`, whose record is lost: its state directory, the data of every pod
    /// of its name, and its cgroup under `cgroup_parent` unless it names another
    /// root's pod.
    pub fn of_name(roots: &Roots, name: &str, cgroup_parent: Option<&Path>) -> Remains<'a> {
        let cgroup = cgroup_parent
            .map(|p| PodCgroup {
                dir: crate::layout::cgroup(p, name),
            })
            .filter(|cg| ours(cg, &roots.state));
        Remains {
            state: roots.state_dir(name),
            netns_pin: roots.netns_pin(name),
            network_lock: roots.network_lock(name),
            pods: roots.leftovers(name),
            cgroup,
            pause: None,
            network: None,
        }
    }

    /// Is anything of the pod there?
    pub fn exist(&self) -> bool {
        self.state.exists()
            || self.pods.iter().any(|p| p.data.exists())
            || self.cgroup.as_ref().is_some_and(|c| c.dir.exists())
    }
}

/// `cg` is no other state root's pod (an unmarked one is nobody's in particular).
pub fn ours(cg: &PodCgroup, state_root: &Path) -> bool {
    cg.owner()
        .map_or(true, |o| crate::layout::owned_by(&o, state_root))
}

/// `dir` is a cgroup the runtime could have made for pod `name`.
fn is_pod_cgroup(dir: &Path, name: &str) -> bool {
    let plain = dir.is_absolute() && !dir.components().any(|c| c == Component::ParentDir);
    let named = dir.file_name().is_some_and(|f| f == name);
    let mounted = cgroup::cgroup2_mount().is_ok_and(|m| dir.starts_with(&m) && dir != m);
    plain && named && mounted
}

impl Sandbox {
    /// Waits until pause runs: its namespaces joined, its mounts made, exec'd. Before
    /// the first thing that needs them (the network's plugins, a container).
    pub fn pause_running(&mut self) -> Result<()> {
        if let Some(starting) = self.starting.take() {
            starting.wait()?;
        }
        Ok(())
    }

    /// Makes the sandbox of `rec`'s pod under `roots`, and
    /// completes the record with what it learned (the network's result, the pod's
    /// addresses). On failure, everything of the pod goes, its state included.
    /// `stop` turns readable when the pod is being taken down meanwhile: the long
    /// steps (the network's plugins) stop, and the sandbox is not made.
    pub fn create(
        rec: &mut PodRecord,
        inputs: &Inputs,
        mount: &Path,
        roots: &Roots,
        ahead: Ahead,
        stop: Option<BorrowedFd>,
    ) -> Result<Sandbox> {
        let paths = rec.paths(roots);
        let made = Sandbox::make(rec, inputs, mount, roots, &paths, ahead, stop);
        if made.is_err() {
            let remains = Remains::of_record(rec, roots);
            let _ = teardown(remains, Duration::ZERO, Keep::Nothing);
        }
        made
    }

    fn make(
        rec: &mut PodRecord,
        inputs: &Inputs,
        mount: &Path,
        roots: &Roots,
        paths: &PodPaths,
        ahead: Ahead,
        stop: Option<BorrowedFd>,
    ) -> Result<Sandbox> {
        crate::volumes::setup(&rec.spec, paths)?;
        crate::timings::mark("volumes");
        let mut sb = Sandbox::namespaces(rec, mount, roots, ahead)?;
        crate::timings::mark("containers' cgroups");
        // Known to the record from here, so that a failure below takes pause down.
        rec.pause = ProcRef::of(sb.pause.pid);
        // The kubelet's for a sandbox: the last process of a pod the kernel would pick
        // (best effort: without CAP_SYS_RESOURCE the score stays as inherited).
        let adj = crate::qos::SANDBOX_OOM_SCORE_ADJ.to_string();
        let _ = std::fs::write(format!("/proc/{}/oom_score_adj", sb.pause.pid), adj);
        if let Some(att) = &mut rec.network {
            // The plugins work in pause's network namespace.
            sb.pause_running()?;
            let (pin, lock) = (paths.netns_pin(), paths.network_lock());
            let masquerading = roots.masquerade(&att.network);
            network::attach(att, sb.pause.pid, &pin, &lock, &masquerading, stop)?;
            crate::timings::mark("network (CNI ADD)");
        }
        let pod_ips = rec
            .network
            .as_ref()
            .map(|a| a.pod_ips())
            .unwrap_or_default();
        let facts = &mut rec.facts;
        facts.host_ips = network::host_ips(pod_ips.first().map(String::as_str));
        // On the host's network, the pod's address is the host's (as Kubernetes has it).
        facts.pod_ips = match rec.spec.network {
            crate::spec::Network::Host => facts.host_ips.clone(),
            _ => pod_ips,
        };
        // Now that the pod's addresses are known (the downward API has them).
        let pod = Resolved {
            spec: &rec.spec,
            inputs,
            facts: &rec.facts,
        };
        crate::volumes::write_files(pod, paths)?;
        crate::volumes::apply_fs_group(&rec.spec, paths)?;
        // Now that the pod's addresses are known (its /etc/hosts has them).
        sb.warnings = crate::names::write(&rec.spec, &rec.facts, &paths.state)
            .context("failed to write the pod's hosts, hostname and resolv.conf")?;
        crate::timings::mark("files, /etc files");
        Ok(sb)
    }

    /// Steps 2-4: the cgroup and pause in its namespaces (those made `ahead` joined).
    fn namespaces(rec: &PodRecord, mount: &Path, roots: &Roots, ahead: Ahead) -> Result<Sandbox> {
        let spec = &rec.spec;
        // The runtime's state and data, this pod's own included, are none of its
        // business: the roots in use, and the default ones if they are elsewhere.
        let mut hidden = vec![roots.state.as_path(), roots.data.as_path()];
        for default in [DEFAULT_STATE_ROOT, DEFAULT_DATA_ROOT] {
            let default = Path::new(default);
            if !hidden.contains(&default) && default.is_dir() {
                hidden.push(default);
            }
        }
        let mounts = Mounts::pod(&hidden, spec.privileged, &spec.sysctls);
        let flags = namespaces::pod_flags(spec);
        let Some(dir) = &rec.cgroup else {
            let (pause, starting) = namespaces::start_pause(
                &rec.pause_binary,
                &ahead.namespaces()?,
                None,
                None,
                mounts,
                flags,
            )?;
            return Ok(Sandbox {
                cgroup: None,
                pause,
                starting: Some(starting),
                warnings: Vec::new(),
            });
        };
        let parent = dir.parent().unwrap_or(mount);
        let leaves: Vec<(&str, &crate::spec::Limits)> = spec
            .all_containers()
            .map(|c| (c.name.as_str(), &c.limits))
            .collect();
        let cgroup = PodCgroup::create(mount, parent, &spec.name, &spec.limits, &leaves)?;
        cgroup.set_owner(&crate::layout::cgroup_owner(&roots.state, &rec.facts.uid));
        crate::timings::mark("cgroups");
        let made = File::open(&cgroup.dir)
            .with_context(|| format!("failed to open cgroup {}", cgroup.dir.display()))
            .and_then(|dir| {
                let ns = namespaces::cgroup_namespace_at(&dir)?;
                let leaf = cgroup.pause_leaf()?;
                let joined = ahead.namespaces()?;
                let started = namespaces::start_pause(
                    &rec.pause_binary,
                    &joined,
                    Some(&leaf),
                    Some(&ns),
                    mounts,
                    flags,
                )?;
                crate::timings::mark("pause cloned");
                // While pause's child makes its mounts: pause is the runtime's own
                // program, and no container starts before the filter is on.
                if !spec.privileged {
                    let filter = cgroup::devices::load()
                        .context("failed to load the pod's device filter (a BPF device program)")?;
                    cgroup::devices::restrict(&dir, &filter).with_context(|| {
                        format!(
                            "failed to restrict the pod's devices (a BPF device program on {})",
                            cgroup.dir.display()
                        )
                    })?;
                }
                crate::timings::mark("device filter");
                cgroup.populate(&spec.limits, &leaves)?;
                Ok(started)
            });
        match made {
            Ok((pause, starting)) => Ok(Sandbox {
                cgroup: Some(cgroup),
                pause,
                starting: Some(starting),
                warnings: Vec::new(),
            }),
            Err(e) => {
                let _ = teardown_cgroup(&cgroup, Duration::ZERO);
                Err(e)
            }
        }
    }
}

/// Takes a pod apart, whatever is left of it: its processes (found through its
/// cgroup or, for a pod without one, through pause) and cgroups, then its network
/// (DEL, as the kubelet stops a sandbox: after its containers), then, unless `keep`
/// says otherwise, its volumes, data and state. Idempotent.
pub fn teardown(remains: Remains, grace: Duration, keep: Keep) -> Result<()> {
    let ended = match (&remains.cgroup, remains.pause) {
        (Some(cg), _) => teardown_cgroup(cg, grace),
        (None, Some(pause)) => {
            teardown_pid_namespace(pause, grace);
            Ok(())
        }
        (None, None) => Ok(()),
    };
    crate::timings::mark("  processes, cgroups");
    // Every process of the pod is known gone (its cgroup empty): its network
    // namespace dies once let go. (Without a cgroup, a process of a hostPID pod may
    // outlive pause and hold it.)
    let gone = ended.is_ok() && remains.cgroup.is_some();
    let detached = match remains.network {
        Some(att) => network::detach(att, &remains.netns_pin, &remains.network_lock, gone),
        None => Ok(()),
    };
    crate::timings::mark("  network (CNI DEL)");
    let removed = match keep {
        Keep::Files => Ok(()),
        Keep::Nothing => remove_files(&remains),
    };
    crate::timings::mark("  volumes, data, state");
    ended.and(detached).and(removed)
}

/// The pod's volumes (unmounted, its mount points released), its data and its state.
fn remove_files(remains: &Remains) -> Result<()> {
    let mut result = Ok(());
    for paths in &remains.pods {
        crate::volumes::teardown(paths);
        // Never through a mount: what is mounted there is not the pod's to delete.
        crate::volumes::unmount_below(&paths.data);
        if let Err(e) = remove_dir_all(&paths.data) {
            result = Err(e);
        }
    }
    remove_dir_all(&remains.state).and(result)
}

fn remove_dir_all(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove {}", dir.display()))
        }
        _ => Ok(()),
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
    let ppid = crate::procfs::stat(pause)?.ppid;
    let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok()?;
    let me = std::env::current_exe().ok()?;
    (ppid > 1 && exe == me).then_some(ppid)
}
