//! `launcher down NAME`: stops a pod gracefully and removes everything it had.
//! Idempotent, and it works whatever is left: a live supervisor is asked to stop the
//! pod (and given the grace period); without one, or without a readable record,
//! the pod's cgroup is enough to find and end every process it holds.

use super::{preflight, print, warn, Opts, PodHandle, Usage};
use crate::cgroup::PodCgroup;
use crate::cli;
use crate::state::{Root, StateError};
use anyhow::{Context, Result};
use std::time::Duration;

/// What a pod whose record is lost gets: the Kubernetes default grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

pub fn down(opts: &Opts, args: &cli::Down) -> Result<i32> {
    let pod = PodHandle::new(opts, &args.name)?;
    let grace = args
        .grace_period
        .as_deref()
        .map(crate::quantity::parse_duration)
        .transpose()
        .map_err(|error| {
            Usage::Spec(crate::spec::SpecError::Quantity {
                flag: "grace-period",
                error,
            })
        })?;
    preflight()?;
    if take_down(opts, &pod.root, &args.name, grace)? {
        print(&format!("{}\n", args.name))?;
    } else {
        warn(&format!("pod {:?} not found; nothing to do", args.name));
    }
    Ok(0)
}

/// Stops and removes pod `name`; false if there was nothing of it.
pub(super) fn take_down(
    opts: &Opts,
    root: &Root,
    name: &str,
    grace: Option<Duration>,
) -> Result<bool> {
    // Waits while `up` (or its supervisor) is still making the pod, or another
    // `down` is taking it away; never on other pods.
    let lock = match root.lock_pod(name) {
        Ok(l) => Some(l),
        Err(StateError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let record = lock.as_ref().and_then(|_| root.record(name).ok());
    let cgroup = match &record {
        Some(r) => r.cgroup.clone(),
        None => opts.cgroup_parent().ok().map(|(_, p)| p.join(name)),
    };
    let cg = cgroup.map(|dir| PodCgroup { dir });
    if lock.is_none() && !cg.as_ref().is_some_and(|c| c.dir.exists()) {
        return Ok(false);
    }
    let grace = grace
        .or(record.as_ref().map(|r| r.spec.grace))
        .unwrap_or(DEFAULT_GRACE);
    let supervisor = record
        .as_ref()
        .and_then(|r| r.supervisor)
        .filter(|s| s.alive())
        .map(|s| s.pid)
        .or_else(|| cg.as_ref().and_then(crate::sandbox::supervisor_of));
    if let Some(pid) = supervisor {
        if lock.is_some() {
            let stop = root.pod_dir(name).join("stop");
            std::fs::write(stop, crate::quantity::format_duration(grace))
                .context("failed to write the stop request")?;
        }
        if let Ok(pidfd) = crate::sys::pidfd_open(pid) {
            crate::sys::pidfd_send_signal(&pidfd, libc::SIGTERM)?;
            // The supervisor runs preStop, SIGTERM, grace period, SIGKILL; give it
            // the grace period and a margin, then take over.
            if !crate::sys::pidfd_wait(&pidfd, grace.saturating_add(Duration::from_secs(10))) {
                let _ = crate::sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            }
        }
    }
    let dir = root.pod_dir(name);
    let remains = crate::sandbox::Remains {
        cgroup: cg.as_ref(),
        pause: record.as_ref().and_then(|r| r.pause),
        network: record
            .as_ref()
            .and_then(|r| r.network.as_ref())
            .map(|a| (a, dir.as_path())),
    };
    crate::sandbox::teardown(remains, grace)?;
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove {}", dir.display()))?
        }
        _ => {}
    }
    // The pod's logs and volumes; without a record, whatever a pod of this name left.
    let data = match &record {
        Some(r) => vec![r.data_dir.clone()],
        None => crate::state::data_dirs_of(&opts.data_root, name),
    };
    for d in &data {
        // `<name>_<uid>`: the uid its mount points are registered by.
        let uid = d
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix(&format!("{name}_")))
            .unwrap_or_default();
        crate::volumes::teardown(uid, d);
    }
    for d in data.iter().filter(|d| !d.as_os_str().is_empty()) {
        crate::volumes::unmount_below(d);
        match std::fs::remove_dir_all(d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("failed to remove {}", d.display()))?
            }
            _ => {}
        }
    }
    drop(lock);
    Ok(true)
}
