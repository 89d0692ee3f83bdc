//! `launcher up`: makes the pod's record and hands it to a supervisor, in the
//! foreground (this process) or detached (`-d`: a fresh process that reports back
//! once every container has been started).

use super::{preflight, print, supervise, warn, Opts, Usage};
use crate::cli::{self, StatusFormat};
use crate::state::{PodRecord, Root};
use crate::sys;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

pub fn up(opts: &Opts, args: &cli::Up) -> Result<i32> {
    let spec = match &args.file {
        Some(file) => {
            crate::spec::validate_backoff_scale(args.backoff_scale).map_err(Usage::Spec)?;
            let text = crate::kube::read(file).map_err(Usage::Manifest)?;
            let (spec, warnings) =
                crate::kube::parse(&text, args.backoff_scale).map_err(Usage::Manifest)?;
            for w in warnings {
                warn(&format!("warning: {w}"));
            }
            spec
        }
        None => args.to_spec().map_err(Usage::Spec)?,
    };
    if args.dry_run {
        let pod = crate::kube::pod_manifest(&spec);
        print(&match args.output {
            StatusFormat::Json => serde_json::to_string_pretty(&pod)? + "\n",
            StatusFormat::Yaml => crate::kube::to_yaml(&pod)?,
        })?;
        return Ok(0);
    }
    preflight()?;
    let (mount, parent) = opts.cgroup_parent()?;
    let leaves: Vec<_> = spec
        .all_containers()
        .map(|c| (c.name.as_str(), &c.limits))
        .collect();
    let cgroup = match crate::cgroup::prepare(&mount, &parent, &spec.limits, &leaves) {
        Ok(moved) => {
            if let Some(moved) = moved {
                warn(&moved.to_string());
            }
            Some(parent.join(&spec.name))
        }
        // No limit asked: the pod can do without a cgroup of its own.
        Err(e @ crate::cgroup::CgroupError::ReadOnly { limits: false, .. }) => {
            warn(&format!(
                "warning: pod {} runs without a cgroup of its own: {e}",
                spec.name
            ));
            None
        }
        Err(e) => return Err(e.into()),
    };
    let record = PodRecord::new(spec, cgroup, opts.find_pause()?);
    let name = record.spec.name.clone();
    let root = Root::open(&opts.root)?;
    // From here the name is taken, the record names the cgroup, and the lock is ours.
    let lock = root.create_pod(&record)?;
    if !args.detach {
        return supervise(opts, &name, true, None, Some(lock));
    }
    // Detached: a fresh supervisor process (setsid, stdio on /dev/null) gets the
    // lock as fd 4 and reports "ok" or its error through a pipe as fd 3.
    let (rd, wr) = sys::pipe()?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(&opts.root);
    if let Some(p) = &opts.cgroup_parent {
        cmd.arg("--cgroup-parent").arg(p);
    }
    cmd.args(["supervise", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (wr_fd, lock_fd) = (wr.as_raw_fd(), lock.fd().as_raw_fd());
    // SAFETY: place_fds and setsid are async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(move || {
            sys::place_fds([wr_fd, lock_fd], 3)?;
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // The supervisor holds the lock now, until the pod's record is complete.
    drop(lock);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = super::down::take_down(opts, &root, &name, None);
            return Err(e).context("failed to start the supervisor");
        }
    };
    drop(wr);
    let mut answer = String::new();
    let _ = File::from(rd).read_to_string(&mut answer);
    match answer.lines().next() {
        Some("ok") => {
            print(&format!("{name}\n"))?;
            Ok(0)
        }
        Some(err) => {
            let _ = child.wait();
            bail!("{}", err.strip_prefix("error: ").unwrap_or(err))
        }
        None => {
            let st = child.wait()?;
            // Whatever it had made goes, as after any failed setup.
            let _ = super::down::take_down(opts, &root, &name, None);
            bail!("the supervisor died while starting the pod ({st})")
        }
    }
}
