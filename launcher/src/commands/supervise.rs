//! The pod's supervisor: sets the sandbox up, then runs the driver until the pod
//! ends. In the foreground it is `up` itself; detached, `launcher supervise NAME`,
//! started by `up -d` with a ready pipe as fd 3, the pod's lock as fd 4 and its
//! inputs (ConfigMaps and Secrets) through a pipe as fd 5.
//!
//! Setup holds the pod's lock until the record names pause and the supervisor, so
//! `down` never meets a pod half made; a failure at any step tears down what was
//! made and frees the name.

use super::{warn, Opts, PodHandle};
use crate::driver::{self, Driver, Host};
use crate::machine::Pod;
use crate::namespaces::Starting;
use crate::record::PodRecord;
use crate::sandbox::{self, Ahead, Keep, Remains, Sandbox};
use crate::spec::Inputs;
use crate::state::{self, PodLock, ProcRef};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

/// Runs the pod: in the foreground for `up`, or as the detached supervisor.
pub fn supervise(
    opts: &Opts,
    name: &str,
    foreground: bool,
    mut ready: Option<File>,
    lock: Option<PodLock>,
    inputs: Inputs,
) -> Result<i32> {
    let pod = PodHandle::new(opts, name)?;
    let (driver, _inputs) = match setup(opts, &pod, foreground, inputs) {
        Ok(d) => d,
        Err(e) => {
            // Whatever of the pod was made goes, and its name is free again.
            let record = pod.record().ok();
            let remains = match &record {
                Some(rec) => Remains::of_record(rec, &pod.root.roots),
                None => Remains::of_name(&pod.root.roots, name, None),
            };
            let _ = sandbox::teardown(remains, Duration::ZERO, Keep::Nothing);
            if let Some(r) = ready.as_mut() {
                let _ = writeln!(r, "error: {e:#}");
            }
            return Err(e);
        }
    };
    drop(lock);
    let outcome = driver.run(ready);
    if foreground {
        match outcome.stopped {
            true => warn(&format!("pod {name} stopped")),
            false => warn(&format!("pod {name} {}", outcome.phase)),
        }
    }
    Ok(outcome.exit_code)
}

/// Makes the pod's sandbox and the driver that runs it; the memfd of the pod's
/// inputs comes back with it, to be held while the supervisor lives.
fn setup(
    opts: &Opts,
    pod: &PodHandle,
    foreground: bool,
    inputs: Inputs,
) -> Result<(Driver<Host>, Option<File>)> {
    crate::timings::mark("start, inputs");
    let mut record = pod.record()?;
    let inputs_fd = match inputs.is_empty() {
        true => None,
        false => Some(
            crate::sys::sealed_memfd(INPUTS_MEMFD, &inputs.encode())
                .context("failed to keep the pod's ConfigMaps and Secrets in memory")?,
        ),
    };
    record.inputs_fd = inputs_fd.as_ref().map(AsRawFd::as_raw_fd);
    let signals = driver::block_signals().context("failed to block signals")?;
    // A stop asked for while the pod is being made (`down` sends SIGTERM) ends its
    // setup: this fd turns readable then. SIGCHLD (the network's plugins) does not.
    let stop = driver::stop_signals().context("failed to create a signalfd")?;
    // Under way while the record is written and the cgroup made (signals blocked
    // first: the thread inherits the mask).
    let ahead = Ahead::start(&record)?;
    // Known from here, so that `down` can ask this process to stop the setup.
    record.supervisor = ProcRef::of(std::process::id() as i32);
    state::write_json(&record.paths(&pod.root.roots).record(), &record)?;
    let (mount, _) = opts.cgroup_parent()?;
    // The host's network namespace, to go back to for the CNI plugins' DEL.
    let host_netns = File::open("/proc/self/ns/net").context("failed to open /proc/self/ns/net")?;
    let roots = &pod.root.roots;
    crate::timings::mark("record, signals");
    let mut sb = Sandbox::create(
        &mut record,
        &inputs,
        &mount,
        roots,
        ahead,
        Some(stop.as_fd()),
    )?;
    let paths = record.paths(roots);
    let undo = |record: &PodRecord, e: anyhow::Error| {
        let _ = crate::sys::leave_pod(&host_netns);
        let remains = Remains::of_record(record, roots);
        let _ = sandbox::teardown(remains, Duration::ZERO, Keep::Nothing);
        e
    };
    // While pause's child makes its mounts: the driver, in the pod's PID namespace.
    let starting = sb.starting.take();
    let driver = || -> Result<(Driver<Host>, OwnedFd)> {
        if record.spec.host_pid {
            // Orphans of the containers come here, not to a pause that is not their init.
            crate::sys::set_child_subreaper()?;
        }
        // Pause's, to join its namespaces by (the driver owns pause).
        let pause = sb.pause.pidfd.try_clone()?;
        // From here on every child of this process is born in the pod's PID namespace
        // (pause's clone made it).
        crate::sys::setns(pause.as_raw_fd(), libc::CLONE_NEWPID)
            .context("failed to join the pod's PID namespace")?;
        state::write_json(&paths.record(), &record)?;
        crate::timings::mark("join the pod, record");
        let machine = Pod::new(record.spec.clone(), SystemTime::now())
            .with_backoff_scale(record.backoff_scale);
        let host = driver::Host::new(
            &signals,
            sb.pause,
            sb.cgroup,
            paths.clone(),
            record.network.clone(),
            host_netns.try_clone().ok(),
        )?;
        let parts = driver::Parts {
            paths,
            rotation: record.log_rotation,
            inputs,
            facts: record.facts.clone(),
            terminal: foreground.then(driver::Terminal::open),
            notify: foreground.then(crate::notify::Notifier::from_env).flatten(),
            warnings: sb.warnings,
        };
        let driver = Driver::new(machine, host, parts)?;
        crate::timings::mark("driver (logs, attach socket)");
        Ok((driver, pause))
    };
    let driver = driver();
    // Pause's child has made its mounts meanwhile (the containers' ground) and joined
    // the pod's network namespace, where this process's own sockets (probes) belong.
    // If its setup failed instead, that is also why a step above may have (its PID
    // namespace went with it): its report is the error then.
    let running = starting.map_or(Ok(()), Starting::wait);
    let driver = match (driver, running) {
        (_, Err(cause)) => Err(cause.into()),
        (driver, Ok(())) => driver,
    };
    let joined = driver.and_then(|(driver, pause)| {
        crate::sys::setns(pause.as_raw_fd(), libc::CLONE_NEWNET)
            .context("failed to join the pod's network namespace")?;
        Ok(driver)
    });
    match joined {
        Ok(d) => Ok((d, inputs_fd)),
        Err(e) => Err(undo(&record, e)),
    }
}

/// The name of the supervisor's memfd of the pod's inputs (`/proc/PID/fd/N` reads
/// `/memfd:launcher-inputs (deleted)`).
const INPUTS_MEMFD: &std::ffi::CStr = c"launcher-inputs";

/// The pod's inputs (ConfigMaps and Secrets): none if it has none; from its
/// supervisor's memory if it has some; None when they cannot be had (the supervisor
/// is gone, or its fd is not the memfd it made).
pub fn inputs_of(rec: &PodRecord) -> Option<Inputs> {
    let Some(fd) = rec.inputs_fd else {
        return Some(Inputs::default());
    };
    let sup = rec.supervisor?;
    let mut file = File::open(format!("/proc/{}/fd/{fd}", sup.pid)).ok()?;
    // What was opened is that memfd (not a file that took its fd number since), of
    // that supervisor (not a process that took its pid since).
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let want = format!("/memfd:{}", INPUTS_MEMFD.to_string_lossy());
    if !link.to_string_lossy().starts_with(&want) || !sup.alive() {
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Inputs::decode(&bytes)
}

/// `launcher supervise NAME`, as `up -d` starts it.
pub fn supervise_detached(opts: &Opts, name: &str) -> Result<i32> {
    let ready = inherited(3).map(File::from);
    let lock = inherited(4).map(PodLock::inherited);
    // Read before anything else: `up` writes them, then waits for `ready`.
    let inputs = inherited(5)
        .map(File::from)
        .and_then(|mut f| {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).ok()?;
            Inputs::decode(&bytes)
        })
        .unwrap_or_default();
    supervise(opts, name, false, ready, lock, inputs)
}

/// An fd `up -d` handed down, if open.
fn inherited(fd: i32) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether fd is open.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    // SAFETY: `up` dup2'ed it there before exec; we take ownership once.
    open.then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
