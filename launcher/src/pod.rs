//! The commands: up, down, ps, status, exec, logs, and the detached supervisor.

use crate::cgroup::{self, PodCgroup, PAUSE_LEAF};
use crate::cli::{self, PsFormat, StatusFormat};
use crate::namespaces;
use crate::process::{self, Request};
use crate::spec::{self, PodSpec};
use crate::state::{self, PodRecord, ProcRef, Root, StateError};
use crate::status;
use crate::supervisor::{self, Supervisor};
use crate::sys;
use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bad input: reported with exit status 2 and nothing started.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}

pub struct Opts {
    pub root: PathBuf,
    pub cgroup_parent: Option<PathBuf>,
    pub pause: Option<PathBuf>,
}

/// Root, and the capabilities namespaces, cgroups and setns need.
fn preflight() -> Result<()> {
    if sys::euid() != 0 {
        bail!("must run as root: creating namespaces and cgroups needs CAP_SYS_ADMIN");
    }
    let caps = sys::effective_caps();
    for (bit, name, why) in [
        (
            21,
            "CAP_SYS_ADMIN",
            "to create namespaces and mount the pod's /proc",
        ),
        (
            12,
            "CAP_NET_ADMIN",
            "to bring up lo in the pod's network namespace",
        ),
        (18, "CAP_SYS_CHROOT", "to join the pod's mount namespace"),
        (8, "CAP_SETPCAP", "to drop capabilities from containers"),
        (5, "CAP_KILL", "to signal the pod's processes"),
    ] {
        if caps & (1u64 << bit) == 0 {
            bail!("missing capability {name}, needed {why}");
        }
    }
    Ok(())
}

fn find_pause(ctx: &Opts) -> Result<PathBuf> {
    if let Some(p) = &ctx.pause {
        if !p.is_file() {
            bail!("pause binary {} not found", p.display());
        }
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("cannot locate the launcher binary")?;
    let beside = exe.with_file_name("pause");
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|d| Path::new(d).join("pause"))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "cannot find the pause binary next to {} or in $PATH. Hint: --pause PATH",
                exe.display()
            )
        })
}

fn cgroup_parent(ctx: &Opts) -> Result<(PathBuf, PathBuf)> {
    let mount = cgroup::cgroup2_mount()?;
    let parent = match &ctx.cgroup_parent {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => mount.join(p),
        None => mount.join("launcher"),
    };
    if !parent.starts_with(&mount) {
        bail!(
            "--cgroup-parent {} is not under the cgroup2 mount {}",
            parent.display(),
            mount.display()
        );
    }
    Ok((mount, parent))
}

pub fn up(ctx: &Opts, args: &cli::Up) -> Result<i32> {
    let spec = match &args.file {
        Some(file) => {
            if !(args.backoff_scale.is_finite() && args.backoff_scale > 0.0) {
                return Err(Usage::Spec(spec::SpecError::BackoffScale(args.backoff_scale)).into());
            }
            let text = crate::manifest::read(file).map_err(Usage::Manifest)?;
            let (spec, warnings) =
                crate::manifest::parse(&text, args.backoff_scale).map_err(Usage::Manifest)?;
            for w in warnings {
                eprintln!("launcher: warning: {w}");
            }
            spec
        }
        None => PodSpec::from_cli(args).map_err(Usage::Spec)?,
    };
    if args.dry_run {
        let pod = status::pod_manifest(&spec);
        match args.output {
            StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&pod)?),
            StatusFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&pod)?),
        }
        return Ok(0);
    }
    preflight()?;
    let (_, parent) = cgroup_parent(ctx)?;
    let pause = find_pause(ctx)?;
    let root = Root::open(&ctx.root)?;
    let lock = root.lock()?;
    let dir = root.create_pod(&spec.name)?;
    let mut record = supervisor::record_for(&spec, &parent.join(&spec.name));
    record.pause_binary = pause;
    if let Err(e) = state::write_json(&dir.join("pod.json"), &record) {
        let _ = fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    if !args.detach {
        return supervise(ctx, &spec.name, true, None, Some(lock));
    }
    // Detached: a fresh supervisor process (setsid, stdio on /dev/null) reports
    // "ok" or its error through a pipe once every container has been started.
    let (rd, wr) = sys::pipe()?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(&ctx.root);
    if let Some(p) = &ctx.cgroup_parent {
        cmd.arg("--cgroup-parent").arg(p);
    }
    cmd.args(["supervise", &spec.name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let wr_fd = wr.as_raw_fd();
    // SAFETY: dup2 and setsid are async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wr_fd, 3) < 0 || libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e).context("failed to start the supervisor");
        }
    };
    drop(wr);
    let mut answer = String::new();
    let _ = File::from(rd).read_to_string(&mut answer);
    drop(lock);
    match answer.lines().next() {
        Some("ok") => {
            println!("{}", spec.name);
            Ok(0)
        }
        Some(err) => {
            let _ = child.wait();
            bail!("{}", err.strip_prefix("error: ").unwrap_or(err))
        }
        None => {
            let st = child.wait()?;
            let _ = fs::remove_dir_all(&dir);
            bail!("the supervisor died while starting the pod ({st})")
        }
    }
}

/// Runs the pod: in the foreground for `up`, or as the detached supervisor.
pub fn supervise(
    ctx: &Opts,
    name: &str,
    foreground: bool,
    mut ready: Option<File>,
    lock: Option<state::Lock>,
) -> Result<i32> {
    let root = Root::open(&ctx.root)?;
    let dir = root.pod_dir(name);
    let setup = || -> Result<(Supervisor, PodRecord)> {
        let mut record = root.record(name)?;
        let signals = supervisor::block_signals().context("failed to block signals")?;
        let (mount, _) = cgroup_parent(ctx)?;
        let parent = record
            .cgroup
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let leaves: Vec<(&str, &spec::Limits)> = record
            .spec
            .all_containers()
            .map(|c| (c.name.as_str(), &c.limits))
            .collect();
        let cg = PodCgroup::create(&mount, &parent, name, &record.spec.limits, &leaves)?;
        let started = File::open(cg.leaf(PAUSE_LEAF))
            .with_context(|| format!("failed to open cgroup {}", cg.leaf(PAUSE_LEAF).display()))
            .and_then(|leaf| {
                Ok(namespaces::start_pause(
                    &record.pause_binary,
                    &record.spec.hostname,
                    &leaf,
                )?)
            });
        let pause = match started {
            Ok(p) => p,
            Err(e) => {
                let _ = cg.remove(Duration::from_secs(1));
                return Err(e);
            }
        };
        // From here on every child of this process is born in the pod's PID namespace,
        // and its own sockets (probes, hooks) are in the pod's network namespace.
        let ns = libc::CLONE_NEWPID | libc::CLONE_NEWNET;
        if let Err(e) = sys::setns(pause.pidfd.as_raw_fd(), ns) {
            let _ = sys::pidfd_send_signal(&pause.pidfd, libc::SIGKILL);
            let _ = cg.kill();
            let _ = cg.remove(Duration::from_secs(2));
            return Err(e).context("failed to join the pod's namespaces");
        }
        record.pause = ProcRef::of(pause.pid);
        record.supervisor = ProcRef::of(std::process::id() as i32);
        state::write_json(&dir.join("pod.json"), &record)?;
        let sup = Supervisor::new(
            record.spec.clone(),
            dir.clone(),
            cg,
            pause,
            signals,
            foreground,
        )?;
        Ok((sup, record))
    };
    let (sup, _record) = match setup() {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            if let Some(r) = ready.as_mut() {
                let _ = writeln!(r, "error: {e:#}");
            }
            return Err(e);
        }
    };
    drop(lock);
    let outcome = sup.run(ready);
    if foreground {
        eprintln!("launcher: pod {name} {}", outcome.phase);
    }
    Ok(outcome.exit_code)
}

/// Is the recorded supervisor still running?
fn supervisor_alive(rec: &PodRecord) -> bool {
    rec.supervisor.is_some_and(|s| s.alive())
}

pub fn down(ctx: &Opts, args: &cli::Down) -> Result<i32> {
    spec::validate_name("pod name", &args.name).map_err(Usage::Spec)?;
    let grace = args
        .grace_period
        .as_deref()
        .map(crate::quantity::parse_duration)
        .transpose()
        .map_err(|source| {
            Usage::Spec(spec::SpecError::Quantity {
                flag: "grace-period",
                source,
            })
        })?;
    preflight()?;
    let root = Root::open(&ctx.root)?;
    let _lock = root.lock()?;
    let rec = match root.record(&args.name) {
        Ok(r) => r,
        Err(StateError::NotFound(_)) => {
            // Idempotent: a half-made directory is still removed.
            let _ = fs::remove_dir_all(root.pod_dir(&args.name));
            eprintln!("launcher: pod {:?} not found; nothing to do", args.name);
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let dir = root.pod_dir(&args.name);
    let grace = grace.unwrap_or(rec.spec.grace);
    if let Some(sup) = rec.supervisor.filter(|s| s.alive()) {
        fs::write(dir.join("stop"), crate::quantity::format_duration(grace))
            .context("failed to write the stop request")?;
        let pidfd = sys::pidfd_open(sup.pid)?;
        sys::pidfd_send_signal(&pidfd, libc::SIGTERM)?;
        // The supervisor runs SIGTERM, grace period, SIGKILL; give it the grace
        // period and a margin, then take over.
        if !wait_exit(&pidfd, grace + Duration::from_secs(10)) {
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
    }
    teardown(&rec, grace)?;
    fs::remove_dir_all(&dir)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("failed to remove {}", dir.display()))?;
    println!("{}", args.name);
    Ok(0)
}

/// Stops whatever is left of a pod without its supervisor: SIGTERM to the
/// containers' processes, the grace period, cgroup.kill, then the cgroups go.
fn teardown(rec: &PodRecord, grace: Duration) -> Result<()> {
    let cg = PodCgroup {
        dir: rec.cgroup.clone(),
    };
    if !cg.dir.exists() {
        return Ok(());
    }
    // Held from before the kill: pause's pidfd turns readable once it is really gone,
    // which for the init of a PID namespace is after everything in the pod exited.
    let pause = rec
        .pause
        .filter(|p| p.alive())
        .and_then(|p| sys::pidfd_open(p.pid).ok());
    let leaves: Vec<PathBuf> = rec
        .spec
        .all_containers()
        .map(|c| cg.leaf(&c.name))
        .collect();
    for leaf in &leaves {
        cgroup::signal_procs(leaf, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while leaves.iter().any(|l| PodCgroup::populated(l)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if cg.kill().is_err() {
        // No cgroup.kill (Linux < 5.14): SIGKILL what is there, pause last.
        for leaf in leaves.iter().chain(std::iter::once(&cg.leaf(PAUSE_LEAF))) {
            cgroup::signal_procs(leaf, libc::SIGKILL);
        }
    }
    cg.remove(Duration::from_secs(10))?;
    if let Some(fd) = pause {
        wait_exit(&fd, Duration::from_secs(5));
    }
    Ok(())
}

/// Waits up to `limit` for the process behind `pidfd` to exit (the pidfd turns
/// readable, pidfd_open(2)); true if it did.
fn wait_exit(pidfd: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(pidfd),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ if left.is_zero() => return false,
            _ => {}
        }
    }
}

fn pod_view(root: &Root, name: &str) -> Result<serde_json::Value> {
    let rec = root.record(name)?;
    let st = root.status(name);
    Ok(status::pod_object(
        &rec,
        st.as_ref(),
        supervisor_alive(&rec),
    ))
}

pub fn status_cmd(ctx: &Opts, args: &cli::Status) -> Result<i32> {
    spec::validate_name("pod name", &args.name).map_err(Usage::Spec)?;
    let root = Root::open(&ctx.root)?;
    let pod = pod_view(&root, &args.name)?;
    match args.output {
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&pod)?),
        StatusFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&pod)?),
    }
    Ok(0)
}

fn age(created: &str) -> String {
    let Ok(t) = humantime::parse_rfc3339(created) else {
        return "?".into();
    };
    let secs = t.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// `Init:N/M` while init containers run, as kubectl shows it.
fn init_progress(pod: &serde_json::Value) -> Option<String> {
    let inits = pod["status"]["initContainerStatuses"].as_array()?;
    let done = inits
        .iter()
        .filter(|c| c["state"]["terminated"]["exitCode"] == 0)
        .count();
    (done < inits.len()).then(|| match pod["status"]["phase"].as_str() {
        Some("Failed") => "Init:Error".to_string(),
        _ => format!("Init:{done}/{}", inits.len()),
    })
}

pub fn ps(ctx: &Opts, args: &cli::Ps) -> Result<i32> {
    let root = Root::open(&ctx.root)?;
    let pods: Vec<serde_json::Value> = root
        .pods()
        .iter()
        .filter_map(|n| pod_view(&root, n).ok())
        .collect();
    if let Some(PsFormat::Json) = args.output {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": pods});
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let wide = matches!(args.output, Some(PsFormat::Wide));
    let mut rows = vec![if wide {
        vec![
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "PAUSE-PID",
            "CGROUP",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    } else {
        vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    }];
    for pod in &pods {
        let cs = pod["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ready = cs.iter().filter(|c| c["ready"] == true).count();
        let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
        let restarts: u64 = cs.iter().filter_map(|c| c["restartCount"].as_u64()).sum();
        let waiting = cs.iter().find_map(|c| {
            c["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| *r == "CrashLoopBackOff")
        });
        let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
        let mut row = vec![
            pod["metadata"]["name"].as_str().unwrap_or("?").to_string(),
            format!("{ready}/{total}"),
            init_progress(pod).unwrap_or_else(|| waiting.unwrap_or(phase).to_string()),
            restarts.to_string(),
            age(pod["metadata"]["creationTimestamp"].as_str().unwrap_or("")),
        ];
        if wide {
            let ann = &pod["metadata"]["annotations"];
            row.push(
                ann["launcher/pause-pid"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
            );
            row.push(ann["launcher/cgroup"].as_str().unwrap_or("-").to_string());
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}

/// The container named `-c`, or the pod's first.
fn find_container<'a>(rec: &'a PodRecord, name: Option<&str>) -> Result<&'a spec::ContainerSpec> {
    rec.spec.container(name).with_context(|| {
        format!(
            "pod {:?} has no container {:?}",
            rec.spec.name,
            name.unwrap_or("")
        )
    })
}

pub fn exec(ctx: &Opts, args: &cli::Exec) -> Result<i32> {
    spec::validate_name("pod name", &args.name).map_err(Usage::Spec)?;
    preflight()?;
    let root = Root::open(&ctx.root)?;
    let rec = root.record(&args.name)?;
    let container = find_container(&rec, args.container.as_deref())?;
    let pause = rec
        .pause
        .filter(|p| p.alive())
        .with_context(|| format!("pod {:?} is not running", args.name))?;
    let pidfd = sys::pidfd_open(pause.pid)
        .with_context(|| format!("pod {:?} is not running", args.name))?;
    let leaf = PodCgroup {
        dir: rec.cgroup.clone(),
    }
    .leaf(&container.name);
    let leaf_dir =
        File::open(&leaf).with_context(|| format!("failed to open cgroup {}", leaf.display()))?;
    sys::setns(pidfd.as_raw_fd(), libc::CLONE_NEWPID)
        .context("failed to join the pod's PID namespace")?;
    let leaf_name = leaf.display().to_string();
    let env = rec.spec.env_of(container);
    let started = process::spawn(&Request {
        argv: &args.command,
        env: &env,
        hostname: &rec.spec.hostname,
        cgroup: &leaf_dir,
        cgroup_name: &leaf_name,
        pause: pidfd.as_raw_fd(),
        stdio: [0, 1, 2],
        capabilities: rec.spec.capabilities_of(container),
        user: container.user,
        group: container.group,
        cwd: container.working_dir.as_deref(),
    })?;
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(started.pid), None)?;
    if let Some(e) = started.exec_error {
        eprintln!(
            "launcher: {}",
            process::exec_error_message(&args.command[0], &e)
        );
        return Ok(process::exit_code_for_exec_error(&e));
    }
    Ok(match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        nix::sys::wait::WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    })
}

pub fn logs(ctx: &Opts, args: &cli::Logs) -> Result<i32> {
    spec::validate_name("pod name", &args.name).map_err(Usage::Spec)?;
    let root = Root::open(&ctx.root)?;
    let rec = root.record(&args.name)?;
    let container = find_container(&rec, args.container.as_deref())?;
    let path = root
        .pod_dir(&args.name)
        .join("logs")
        .join(format!("{}.log", container.name));
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    let stdout = std::io::stdout();
    let mut pos = 0u64;
    loop {
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(&file);
        let mut out = stdout.lock();
        pos += crate::logs::copy_messages(&mut reader, &mut out)?;
        out.flush()?;
        drop(out);
        if !args.follow {
            return Ok(0);
        }
        // Follow while the pod's supervisor runs; then one last read.
        let live = root.record(&args.name).is_ok_and(|r| supervisor_alive(&r));
        if !live {
            file.seek(SeekFrom::Start(pos))?;
            crate::logs::copy_messages(&mut BufReader::new(&file), &mut stdout.lock())?;
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ready pipe `up -d` hands the supervisor as fd 3.
pub fn ready_pipe() -> Option<File> {
    // SAFETY: fd 3 is the pipe `up` dup2'ed there before exec; we take ownership once.
    let valid = unsafe { libc::fcntl(3, libc::F_GETFD) } >= 0;
    // SAFETY: as above, checked to be open.
    valid.then(|| unsafe { File::from_raw_fd(3) })
}
