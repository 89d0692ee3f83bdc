//! `launcher down NAME...` (or `--all`, `-l`), as `kubectl delete pod`: stops each pod
//! gracefully, all at once, and removes everything it had.
//! Idempotent, and it works whatever is left: a live supervisor is asked to stop the
//! pod (and given the grace period); without one, or without a readable record,
//! the pod's cgroup is enough to find and end every process it holds.

use super::{preflight, print, warn, warn_plain, Opts, PodHandle, Usage};
use crate::cli;
use crate::record::PodRecord;
use crate::sandbox::{self, Keep, Remains};
use crate::state::{Root, StateError};
use anyhow::{Context, Result};
use std::time::Duration;

/// What a pod whose record is lost gets: the Kubernetes default grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

pub fn down(opts: &Opts, args: &cli::Down) -> Result<i32> {
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
    let selector = (args.selector.as_deref())
        .map(crate::selector::Selector::parse)
        .transpose()
        .map_err(|e| Usage::Invalid(format!("--selector: {e}")))?;
    let mut names = super::pod_names(&args.names)?;
    let root = opts.open_root()?;
    for n in &names {
        PodHandle::under(&root, n)?;
    }
    preflight()?;
    if args.all || selector.is_some() {
        names = root.pods();
        if let Some(sel) = &selector {
            names.retain(|n| {
                let labels = PodRecord::load(&root, n).map(|r| r.spec.labels);
                labels.is_ok_and(|l| sel.matches(&l))
            });
        }
        if names.is_empty() {
            warn_plain("No resources found");
            return Ok(0);
        }
    }
    let root = &root;
    crate::timings::mark("names, checks");
    // All at once, as kubectl's deletions are: one pod's grace period holds up no other.
    let results: Vec<Result<bool>> = std::thread::scope(|s| {
        let stops: Vec<_> = (names.iter())
            .map(|n| s.spawn(move || take_down(opts, root, n, grace)))
            .collect();
        (stops.into_iter())
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("stopping failed")))
            })
            .collect()
    });
    // (With several pods their phases interleave: timings are for one pod.)
    crate::timings::report("down");
    let mut code = 0;
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(true) => print(&format!("pod {name:?} deleted\n"))?,
            Ok(false) if args.ignore_not_found => {}
            Ok(false) => {
                warn_plain(&format!(
                    "Error from server (NotFound): pods {name:?} not found"
                ));
                code = 1;
            }
            Err(e) => {
                warn(&format!("pod {name:?}: {e:#}"));
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Stops and removes pod `name`; false if there was nothing of it.
pub(super) fn take_down(
    opts: &Opts,
    root: &Root,
    name: &str,
    grace: Option<Duration>,
) -> Result<bool> {
    // A pod still being made: its supervisor is asked to stop the setup (its
    // network's plugins are killed at once) rather than waited for. It was there,
    // though what its setup leaves may be nothing by the time the lock is ours.
    let busy = root.pod_busy(name);
    if busy {
        let making = PodRecord::load(root, name)
            .ok()
            .filter(|r| r.pause.is_none());
        if let Some(sup) = making.and_then(|r| r.supervisor).filter(|s| s.alive()) {
            if let Ok(pidfd) = crate::sys::pidfd_open(sup.pid) {
                let _ = crate::sys::pidfd_send_signal(&pidfd, libc::SIGTERM);
            }
        }
    }
    // Waits while `up` (or its supervisor) is still making the pod, or another
    // `down` is taking it away; never on other pods.
    let lock = match root.lock_pod(name) {
        Ok(l) => Some(l),
        Err(StateError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let record = lock.as_ref().and_then(|_| PodRecord::load(root, name).ok());
    let remains = match &record {
        Some(r) => Remains::of_record(r, &root.roots),
        // Without a record: the pod's name is enough to find its cgroup and data.
        None => {
            let parent = opts.cgroup_parent().ok().map(|(_, p)| p);
            Remains::of_name(&root.roots, name, parent.as_deref())
        }
    };
    if lock.is_none() && !remains.exist() {
        return Ok(busy);
    }
    let grace = grace
        .or(record.as_ref().map(|r| r.spec.grace))
        .unwrap_or(DEFAULT_GRACE);
    let supervisor = record
        .as_ref()
        .and_then(|r| r.supervisor)
        .filter(|s| s.alive())
        .map(|s| s.pid)
        .or_else(|| remains.cgroup.as_ref().and_then(sandbox::supervisor_of));
    crate::timings::mark(&format!("{name}: lock, record"));
    if let Some(pid) = supervisor {
        if lock.is_some() {
            let stop = root.roots.stop_request(name);
            let grace = crate::quantity::format_duration(grace);
            if crate::timings::on() {
                let _ = std::fs::remove_file(root.roots.stop_timings(name));
            }
            let request = crate::timings::stop_request(&grace, crate::timings::on());
            std::fs::write(stop, request).context("failed to write the stop request")?;
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
    let phase = format!("{name}: the supervisor's stop");
    match crate::timings::on() {
        true => {
            // The supervisor's own phases, if it left them (it ran the stop).
            let file = root.roots.stop_timings(name);
            let text = crate::state::read_text(&file).unwrap_or_default();
            let _ = std::fs::remove_file(&file);
            crate::timings::nested(&phase, crate::timings::decode(&text));
        }
        false => crate::timings::mark(&phase),
    }
    sandbox::teardown(remains, grace, Keep::Nothing)?;
    crate::timings::mark(&format!("{name}: teardown"));
    drop(lock);
    Ok(true)
}
