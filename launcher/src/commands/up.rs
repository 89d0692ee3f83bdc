//! `launcher up`: makes the pod's record and hands it to a supervisor, in the
//! foreground (this process) or detached (`-d`: a fresh process that reports back
//! once every container has been started).

use super::{preflight, print, supervise, warn, Opts, Usage};
use crate::cli::{self, StatusFormat};
use crate::layout::{DEFAULT_DATA_ROOT, DEFAULT_STATE_ROOT};
use crate::record::PodRecord;
use crate::spec::Inputs;
use crate::state::Root;
use crate::sys;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn up(opts: &Opts, args: &cli::Up) -> Result<i32> {
    crate::spec::validate_backoff_scale(args.backoff_scale).map_err(Usage::Spec)?;
    let (mut spec, inputs, written) = if args.file.is_empty() {
        (
            args.to_spec().map_err(Usage::Spec)?,
            Inputs::default(),
            None,
        )
    } else {
        if args.file.iter().filter(|f| *f == "-").count() > 1 {
            return Err(Usage::Invalid("-f -: standard input can be read only once".into()).into());
        }
        let texts = args
            .file
            .iter()
            .map(|f| crate::kube::read(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Usage::Manifest)?;
        let manifest = crate::kube::parse_all(&texts).map_err(Usage::Manifest)?;
        for w in &manifest.warnings {
            warn(&format!("warning: {w}"));
        }
        (manifest.spec, manifest.inputs, Some(manifest.pod))
    };
    crate::timings::mark("parse");
    args.apply_network(&mut spec).map_err(Usage::Spec)?;
    localhost_profiles(&mut spec, &args.seccomp_profile_root)?;
    // The kubelet's sysctl admission: namespaced ones, safe or allowed.
    let host_network = spec.network == crate::spec::Network::Host;
    for (i, (name, _)) in spec.sysctls.iter().enumerate() {
        let allowed = &args.allowed_unsafe_sysctls;
        if let Some(why) = crate::sysctl::refusal(name, host_network, spec.host_ipc, allowed) {
            let at = format!("spec.securityContext.sysctls[{i}].name");
            return Err(Usage::Invalid(format!("{at}: {why}")).into());
        }
    }
    // The Pod Security Standards, on the pod as it was written (or as the flags
    // make it), as admission sees it; with the host's network if --network says so.
    use crate::kube::admission;
    let mut object = written.map_or_else(|| crate::kube::pod_of(&spec), |p| *p);
    if spec.network == crate::spec::Network::Host {
        if let Some(s) = object.spec.as_mut() {
            s.host_network = Some(true);
        }
    }
    if let Some(level) = args.pod_security_warn {
        if let Some(why) = admission::verdict(&object, level) {
            super::warn_plain(&format!("Warning: would violate {why}"));
        }
    }
    if let Some(why) = admission::verdict(&object, args.pod_security) {
        let name = &spec.name;
        return Err(Usage::Invalid(format!("pods {name:?} is forbidden: violates {why}")).into());
    }
    let rotation = args.log_rotation().map_err(Usage::Invalid)?;
    if args.dry_run {
        let pod = crate::kube::pod_manifest(&spec);
        print(&match args.output {
            StatusFormat::Json => serde_json::to_string_pretty(&pod)? + "\n",
            StatusFormat::Yaml => crate::kube::to_yaml(&pod)?,
        })?;
        return Ok(0);
    }
    // -i: the container this terminal attaches to.
    let attached = match args.stdin {
        false => None,
        true => Some(
            spec.containers
                .iter()
                .find(|c| c.stdin)
                .map(|c| c.name.clone())
                .ok_or_else(|| {
                    Usage::Invalid(format!(
                        "-i: no container of pod {:?} has stdin: true to attach to",
                        spec.name
                    ))
                })?,
        ),
    };
    crate::timings::mark("checks, admission");
    preflight()?;
    let data_root = crate::state::trusted_dir(&opts.data_root, "--data-root")?;
    let root = Root::open(&opts.root, &data_root)?;
    let defaults = [DEFAULT_STATE_ROOT, DEFAULT_DATA_ROOT].map(PathBuf::from);
    let mut roots: Vec<&Path> = vec![&root.dir, &data_root];
    roots.extend(defaults.iter().map(PathBuf::as_path));
    crate::volumes::check_host_paths(&spec, &roots).map_err(Usage::Volume)?;
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
            Some(crate::layout::cgroup(&parent, &spec.name))
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
    if spec.host_pid && cgroup.is_none() {
        return Err(Usage::Invalid(format!(
            "pod {}: hostPID needs a cgroup of the pod's own to find its processes by",
            spec.name
        ))
        .into());
    }
    crate::timings::mark("roots, host paths, cgroup");
    let mut record = PodRecord::new(spec, cgroup, opts.find_pause()?);
    record.log_rotation = rotation;
    record.backoff_scale = args.backoff_scale;
    let facts = &mut record.facts;
    facts.node_name = crate::kube::node_name().unwrap_or_default();
    // The node's CPUs, as the kubelet counts them (cAdvisor's online cores; not
    // std's available_parallelism, which reads this process's cgroup, waiting on the
    // kernel's cgroup lock while the last pod's cgroups are being destroyed).
    facts.capacity_milli_cpu = sys::online_cpus() * 1000;
    facts.capacity_memory = crate::cgroup::memory::machine_total().unwrap_or(0);
    let name = record.spec.name.clone();
    // Published ports are checked against the other pods' and the record made under
    // one lock, so two pods never publish one port.
    let (ports_lock, others) = if record.spec.ports.is_empty() {
        (None, Vec::new())
    } else {
        let lock = crate::state::lock_file(&root.roots.ports_lock())?;
        (Some(lock), published_ports(&root))
    };
    let timeout = crate::quantity::parse_duration(&args.cni_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Usage::Invalid(format!(
                "--cni-timeout {:?}: not a duration above 0 (e.g. 30s, 2m)",
                args.cni_timeout
            ))
        })?;
    let dirs = crate::network::Dirs {
        timeout,
        conf: &args.cni_conf_dir,
        bin: &args.cni_bin_dirs(),
    };
    record.network = crate::network::plan(&record.spec, &record.facts.uid, &dirs, &others)
        .map_err(|e| match e.is_usage() {
            true => anyhow::Error::from(Usage::Network(e)),
            false => e.into(),
        })?;
    crate::timings::mark("record, network plan");
    // From here the name is taken, the record names the cgroup, and the lock is ours.
    let lock = root.create_pod(&name, &record)?;
    drop(ports_lock);
    crate::timings::mark("state directory");
    if !args.detach && attached.is_none() {
        return supervise(opts, &name, true, None, Some(lock), inputs);
    }
    // Detached: a fresh supervisor process (setsid, stdio on /dev/null) gets the
    // lock as fd 4, the pod's inputs (never written to the record) through a pipe as
    // fd 5, and reports "ok" or its error through a pipe as fd 3.
    let (rd, wr) = sys::pipe()?;
    let (inputs_rd, inputs_wr) = sys::pipe()?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&opts.root)
        .arg("--data-root")
        .arg(&opts.data_root);
    if let Some(p) = &opts.cgroup_parent {
        cmd.arg("--cgroup-parent").arg(p);
    }
    cmd.args(["supervise", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (wr_fd, lock_fd, inputs_fd) =
        (wr.as_raw_fd(), lock.fd().as_raw_fd(), inputs_rd.as_raw_fd());
    // SAFETY: place_fds and setsid are async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(move || {
            sys::place_fds([wr_fd, lock_fd, inputs_fd], 3)?;
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
    drop(inputs_rd);
    crate::timings::mark("spawn the supervisor");
    {
        use std::io::Write;
        // A supervisor that died before reading them says so through `answer`.
        let _ = File::from(inputs_wr).write_all(&inputs.encode());
    }
    let mut answer = String::new();
    let _ = File::from(rd).read_to_string(&mut answer);
    crate::timings::nested("supervisor", crate::timings::decode(&answer));
    crate::timings::report("up");
    match answer.lines().next() {
        Some("ok") => match attached {
            Some(c) if !args.detach => attach_to(opts, &root, &name, &c, args.tty),
            _ => {
                print(&format!("{name}\n"))?;
                Ok(0)
            }
        },
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

/// `up -i` in the foreground: this terminal attached to container `c`, as kubectl
/// run -i; the pod is this session's: it goes, with its grace period, when the
/// container ends or this process is stopped, and exits with the container's
/// status. The detach keys leave it running.
fn attach_to(opts: &Opts, root: &Root, name: &str, c: &str, tty: bool) -> Result<i32> {
    let pod = super::PodHandle::under(root, name)?;
    let keys = super::attach::DEFAULT_DETACH_KEYS.to_vec();
    let restarts = |pod: &super::PodHandle| {
        let s = pod.status()?;
        let cs = s.container_statuses.into_iter().find(|x| x.name == c)?;
        Some(cs.restart_count)
    };
    let before = restarts(&pod).unwrap_or(0);
    let end = super::attach::session(&pod, c, true, tty, keys);
    if let Ok(super::attach::End::Detached) = end {
        warn(&format!(
            "launcher: detached from pod {name:?}: `launcher attach {name} -c {c} -it` \
             attaches again, `launcher down {name}` stops it"
        ));
        return Ok(0);
    }
    let code = match &end {
        Ok(super::attach::End::Ended) => exit_code(&pod, c, before),
        _ => 0,
    };
    super::down::take_down(opts, root, name, None)?;
    end?;
    Ok(code)
}

/// The exit status of container `c`'s instance that just ended (it had restarted
/// `before` times), once the supervisor has published it (within a second).
fn exit_code(pod: &super::PodHandle, c: &str, before: u32) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let status = pod.status();
        let found = status.as_ref().and_then(|s| {
            let cs = s.container_statuses.iter().find(|x| x.name == c)?;
            // Ended for good, or restarted since (its last instance the one).
            let restarted = cs.restart_count > before;
            let last = cs.last_state.terminated.as_ref().filter(|_| restarted);
            cs.state.terminated.as_ref().or(last).map(|t| t.exit_code)
        });
        if let Some(code) = found {
            return code;
        }
        if std::time::Instant::now() >= deadline {
            return 0;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Finds each container's Localhost seccomp profile under `root` and compiles it
/// once now, so that a missing or broken one is bad input, named by its field.
fn localhost_profiles(spec: &mut crate::spec::PodSpec, root: &Path) -> Result<()> {
    let caps: Vec<Option<u64>> = spec
        .all_containers()
        .map(|c| spec.capabilities_of(c))
        .collect();
    let inits = spec.init_containers.len();
    let containers = spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
        .enumerate();
    for (i, c) in containers {
        let Some(crate::spec::Seccomp::Localhost { profile, path }) = &mut c.seccomp else {
            continue;
        };
        *path = root.join(&*profile);
        let at = match i < inits {
            true => format!("spec.initContainers[{i}]"),
            false => format!("spec.containers[{}]", i - inits),
        };
        if let Some(caps) = caps[i] {
            crate::seccomp::localhost(path, caps).map_err(|e| {
                Usage::Invalid(format!(
                    "{at}.securityContext.seccompProfile.localhostProfile: {e}"
                ))
            })?;
        }
    }
    Ok(())
}

/// The host ports other pods publish: those of pods whose network is pinned, or
/// still being made (no pause yet); a pod that ended has let its ports go.
fn published_ports(root: &Root) -> Vec<(String, crate::spec::PortMapping)> {
    root.pods()
        .into_iter()
        .filter_map(|name| PodRecord::load(root, &name).ok())
        .filter(|r| !r.spec.ports.is_empty())
        .filter(|r| r.pause.is_none() || root.roots.netns_pin(&r.spec.name).exists())
        .flat_map(|r| {
            let name = r.spec.name.clone();
            r.spec.ports.into_iter().map(move |p| (name.clone(), p))
        })
        .collect()
}
