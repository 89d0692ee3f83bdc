//! The pod's supervisor: sets the sandbox up, then runs the driver until the pod
//! ends. In the foreground it is `up` itself; detached, `launcher supervise NAME`,
//! started by `up -d` with a ready pipe as fd 3 and the pod's lock as fd 4.
//!
//! Setup holds the pod's lock until the record names pause and the supervisor, so
//! `down` never meets a pod half made; a failure at any step tears down what was
//! made and frees the name.

use super::{warn, Opts, PodHandle};
use crate::driver::{self, Driver};
use crate::machine::Pod;
use crate::sandbox::{self, Keep, Remains, Sandbox};
use crate::spec::Data;
use crate::state::{self, PodLock, ProcRef};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

/// Runs the pod: in the foreground for `up`, or as the detached supervisor.
pub fn supervise(
    opts: &Opts,
    name: &str,
    foreground: bool,
    mut ready: Option<File>,
    lock: Option<PodLock>,
    secrets: BTreeMap<String, Data>,
) -> Result<i32> {
    let pod = PodHandle::new(opts, name)?;
    let (driver, _secrets) = match setup(opts, &pod, foreground, secrets) {
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
        warn(&format!("pod {name} {}", outcome.phase));
    }
    Ok(outcome.exit_code)
}

fn setup(
    opts: &Opts,
    pod: &PodHandle,
    foreground: bool,
    secrets: BTreeMap<String, Data>,
) -> Result<(Driver, Option<File>)> {
    let mut record = pod.record()?;
    // Held for `exec` as long as the supervisor lives (see `PodRecord::secrets_fd`).
    let secrets_fd = match secrets.is_empty() {
        true => None,
        false => Some(
            serde_json::to_vec(&secrets)
                .map_err(std::io::Error::from)
                .and_then(|json| crate::sys::sealed_memfd(SECRETS_MEMFD, &json))
                .context("failed to keep the pod's Secrets in memory")?,
        ),
    };
    record.secrets_fd = secrets_fd.as_ref().map(AsRawFd::as_raw_fd);
    record.spec.objects.secrets = secrets;
    let signals = driver::block_signals().context("failed to block signals")?;
    let (mount, _) = opts.cgroup_parent()?;
    // The host's network namespace, to go back to for the CNI plugins' DEL.
    let host_netns = File::open("/proc/self/ns/net").context("failed to open /proc/self/ns/net")?;
    let roots = &pod.root.roots;
    let sb = Sandbox::create(&mut record, &mount, roots)?;
    let paths = record.paths(roots);
    let rotation = record.log_rotation;
    let undo = |record: &crate::record::PodRecord, e: anyhow::Error| {
        let _ = crate::sys::leave_pod(&host_netns);
        let remains = Remains::of_record(record, roots);
        let _ = sandbox::teardown(remains, Duration::ZERO, Keep::Nothing);
        e
    };
    if record.spec.host_pid {
        // Orphans of the containers come here, not to a pause that is not their init.
        if let Err(e) = crate::sys::set_child_subreaper() {
            return Err(undo(&record, e.into()));
        }
    }
    // From here on every child of this process is born in the pod's PID namespace,
    // and its own sockets (probes) are in the pod's network namespace.
    let ns = libc::CLONE_NEWPID | libc::CLONE_NEWNET;
    if let Err(e) = crate::sys::setns(sb.pause.pidfd.as_raw_fd(), ns) {
        let e = anyhow::Error::from(e).context("failed to join the pod's namespaces");
        return Err(undo(&record, e));
    }
    record.supervisor = ProcRef::of(std::process::id() as i32);
    if let Err(e) = state::write_json(&paths.record(), &record) {
        return Err(undo(&record, e.into()));
    }
    let network = record.network.clone();
    let machine = Pod::new(record.spec.clone(), SystemTime::now());
    match Driver::new(
        machine, paths, rotation, sb.cgroup, sb.pause, &signals, foreground,
    ) {
        Ok(d) => Ok((
            d.with_network(network, host_netns.try_clone().ok()),
            secrets_fd,
        )),
        Err(e) => Err(undo(&record, e)),
    }
}

/// The name of the supervisor's memfd of Secrets (`/proc/PID/fd/N` reads
/// `/memfd:launcher-secrets (deleted)`).
pub const SECRETS_MEMFD: &std::ffi::CStr = c"launcher-secrets";

/// The pod's Secrets, from its supervisor's memory; None when the supervisor is gone
/// or its fd is not the memfd it made.
pub fn secrets_of(rec: &crate::record::PodRecord) -> Option<BTreeMap<String, Data>> {
    let (sup, fd) = (rec.supervisor?, rec.secrets_fd?);
    let file = File::open(format!("/proc/{}/fd/{fd}", sup.pid)).ok()?;
    // What was opened is that memfd (not a file that took its fd number since), of
    // that supervisor (not a process that took its pid since).
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let want = format!("/memfd:{}", SECRETS_MEMFD.to_string_lossy());
    if !link.to_string_lossy().starts_with(&want) || !sup.alive() {
        return None;
    }
    serde_json::from_reader(std::io::BufReader::new(file)).ok()
}

/// `launcher supervise NAME`, as `up -d` starts it.
pub fn supervise_detached(opts: &Opts, name: &str) -> Result<i32> {
    let ready = inherited(3).map(File::from);
    let lock = inherited(4).map(PodLock::inherited);
    // Read before anything else: `up` writes them, then waits for `ready`.
    let secrets = inherited(5)
        .map(File::from)
        .and_then(|f| serde_json::from_reader(std::io::BufReader::new(f)).ok())
        .unwrap_or_default();
    supervise(opts, name, false, ready, lock, secrets)
}

/// An fd `up -d` handed down, if open.
fn inherited(fd: i32) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether fd is open.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    // SAFETY: `up` dup2'ed it there before exec; we take ownership once.
    open.then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
