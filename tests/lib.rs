//! Support for the integration tests: find the built binaries, start processes that
//! are cleaned up in `Drop` even when a test fails, wait on conditions with deadlines
//! instead of sleeping, and run commands inside a pod's PID namespace.
//!
//! The tests run in two tiers: on the host (cgroup2 without controllers) and in the
//! VM (`make vm-test`, cgroup2 with memory, cpu, pids, io). Tests that need a
//! controller carry `#[ignore = "needs cgroup v2 controllers: VM tier"]`: the VM runs
//! them (`--ignored`), and with them the smoke set `vm/smoke` lists.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Directory holding `pause` and `launcher`: `$POD_BIN_DIR` (set by the Makefile and
/// the VM), else the profile directory this test binary was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<triple>/<profile>/deps/<test> -> target/<triple>/<profile>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not built: run `make build` or set POD_BIN_DIR",
        path.display()
    );
    path
}

/// True inside the VM tier, where every cgroup v2 controller must be available.
pub fn in_vm() -> bool {
    std::env::var_os("POD_TIER").is_some_and(|t| t == "vm")
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; panics with `what`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + scaled(limit);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deadlines stretch in the VM, which runs under software emulation.
pub fn scaled(d: Duration) -> Duration {
    if in_vm() {
        d * 5
    } else {
        d
    }
}

/// A child process that is SIGKILLed and reaped when dropped, unless already waited.
pub struct Proc {
    pub child: Child,
    done: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc {
            child: cmd.spawn().unwrap(),
            done: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for exit with a deadline; panics (and the Drop kills) on timeout.
    pub fn wait_timeout(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + scaled(limit);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.done = Some(st);
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "process {} still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What it wrote on its piped stderr, to the end.
    pub fn stderr(&mut self) -> Vec<u8> {
        let mut err = Vec::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            io::Read::read_to_end(&mut pipe, &mut err).unwrap();
        }
        err
    }

    pub fn running(&mut self) -> bool {
        match self.child.try_wait().unwrap() {
            Some(st) => {
                self.done = Some(st);
                false
            }
            None => true,
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own unreaped child by pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.done.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `path args...` as PID 1 of a new PID namespace, as a direct child of the
/// test (clone(2) with CLONE_NEWPID, then execve in the child at once).
pub fn spawn_pid1(path: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(path);
    cmd.args(args);
    // SAFETY: unshare(CLONE_NEWPID) in the forked child only sets the PID namespace
    // for *its* children; the exec'd program would stay outside. So the pre_exec
    // hook forks once more: the grandchild (PID 1 of the new namespace) goes on to
    // exec, the intermediate waits for it and mirrors its exit. Only async-signal-
    // safe calls are made between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWPID) != 0 {
                return Err(io::Error::last_os_error());
            }
            forward_to_grandchild()
        });
    }
    Proc::spawn(&mut cmd)
}

/// Host PID of the PID 1 started by [`spawn_pid1`] (the intermediate's only child).
pub fn pid1_of(intermediate: &Proc) -> i32 {
    let mut found = 0;
    wait_for(
        "PID 1 of the new namespace",
        Duration::from_secs(10),
        || {
            found = children_of(intermediate.pid())
                .first()
                .copied()
                .unwrap_or(0);
            found != 0
        },
    );
    found
}

/// Runs `cmd` inside the PID namespace of `pid` (like `nsenter -t PID -p`): the
/// command itself is in the namespace, never the host's, so `kill 1` means the pod's 1.
pub fn in_pidns_of(pid: i32, cmd: &mut Command) -> &mut Command {
    let ns = fs::File::open(format!("/proc/{pid}/ns/pid")).unwrap();
    // SAFETY: setns on an fd opened before the fork, then the same fork-and-forward
    // as spawn_pid1; only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWPID) != 0 {
                return Err(io::Error::last_os_error());
            }
            forward_to_grandchild()
        });
    }
    cmd
}

/// In a pre_exec hook: fork; the child returns to exec, the parent waits for it and
/// exits with its status (signal deaths as 128+N), like nsenter(1) does.
fn forward_to_grandchild() -> io::Result<()> {
    // SAFETY: called between fork and exec; fork/waitpid/_exit are async-signal-safe.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            return Ok(());
        }
        // Close std's CLOEXEC exec-status pipe (and everything else) here, or the
        // parent's spawn() would wait for this intermediate to exit.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(126);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status));
    }
}

/// Pids whose parent is `ppid`, from /proc/*/stat.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((_, parent)) = stat_state(pid) {
            if parent == ppid {
                out.push(pid);
            }
        }
    }
    out
}

/// Sends `sig` to `pid`: only ever a process the test started, directly or through
/// the launcher (a supervisor, a container).
pub fn signal_pid(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes any pid and signal number and only reports errors.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid}");
}

/// The machine's memory (MemTotal in /proc/meminfo), in KiB.
pub fn mem_total_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// (state letter, ppid) from /proc/PID/stat; None when the process is gone.
pub fn stat_state(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A field of /proc/PID/status, e.g. "VmRSS" or "ShdPnd".
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

/// A fresh directory under the system temp dir, removed on drop. Each is its own,
/// named by the process and a count: two tests of one process that ask for the same
/// tag at once (every terminal test's `Tmux` does) must not share one, nor remove
/// the other's.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// One in `parent` (a data root outside /tmp, where the runtime's own state is
    /// out of a container's view by a mask, not by the container's own /tmp).
    pub fn new_in(parent: &Path, tag: &str) -> TempDir {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = parent.join(format!("pod-test-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        TempDir(base)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Where cgroup2 is mounted, from /proc/self/mountinfo (not assumed to be /sys/fs/cgroup).
pub fn cgroup2_mount() -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in info.lines() {
        let (pre, post) = line.split_once(" - ").unwrap();
        if post.split(' ').next() == Some("cgroup2") {
            return PathBuf::from(pre.split(' ').nth(4).unwrap());
        }
    }
    panic!("no cgroup2 mounted");
}

/// A private launcher world for one test: its own state root and cgroup parent, so
/// tests run in parallel. Drop takes down every pod left and removes both.
pub struct Pods {
    pub root: TempDir,
    /// The data root (logs).
    pub data: TempDir,
    pub cgroup_parent: PathBuf,
    /// The stand-in host the launcher runs in, for the network tests.
    pub network: Option<NetHost>,
}

impl Pods {
    pub fn new(tag: &str) -> Pods {
        let root = TempDir::new(&format!("root-{tag}"));
        let data = TempDir::new(&format!("data-{tag}"));
        let cgroup_parent =
            cgroup2_mount().join(format!("launcher-test-{}-{tag}", std::process::id()));
        Pods {
            root,
            data,
            cgroup_parent,
            network: None,
        }
    }

    /// Pods whose launcher runs in a [`NetHost`] of their own, with the default
    /// network (or `--network`) and a CNI configuration directory of their own.
    pub fn networked(tag: &str) -> Pods {
        let mut pods = Pods::new(tag);
        pods.network = Some(NetHost::new(tag));
        pods
    }

    pub fn net(&self) -> &NetHost {
        self.network.as_ref().expect("Pods::networked")
    }

    /// `launcher --root R --cgroup-parent P ARGS...`, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("launcher"));
        c.arg("--root")
            .arg(self.root.path())
            .arg("--data-root")
            .arg(self.data.path())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(args);
        c.env_remove("LAUNCHER_ROOT")
            .env_remove("LAUNCHER_DATA_ROOT")
            .env_remove("LAUNCHER_LOG_MAX_SIZE")
            .env_remove("LAUNCHER_LOG_MAX_FILES")
            .env_remove("LAUNCHER_CGROUP_PARENT")
            .env_remove("LAUNCHER_CNI_CONF_DIR")
            .env_remove("LAUNCHER_CNI_BIN_DIR");
        // The machine's own network is never a test's target: pods here have only
        // their loopback, but in a `NetHost` (tests/network.rs).
        match &self.network {
            Some(net) => net.enter(&mut c),
            None => {
                c.env("LAUNCHER_NETWORK", "none");
            }
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "launcher {args:?} failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `launcher up -f - EXTRA...` with `yaml` on standard input.
    pub fn up_yaml(&self, yaml: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["up", "-f", "-"];
        args.extend_from_slice(extra);
        self.run_with_input(&args, yaml)
    }

    /// `launcher ARGS...` with `input` on its standard input, run to its end.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> std::process::Output {
        self.spawn_with_input(args, input)
            .wait_with_output()
            .unwrap()
    }

    /// `launcher ARGS...` started with `input` on its standard input, then its end;
    /// its output piped.
    pub fn spawn_with_input(&self, args: &[&str], input: &str) -> std::process::Child {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    }

    /// `up -d` of a manifest, asserting that it started.
    pub fn up_detached(&self, yaml: &str, extra: &[&str]) {
        let out = self.up_yaml(yaml, &[&["-d"], extra].concat());
        assert!(
            out.status.success(),
            "up -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn status(&self, pod: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", pod, "-o", "json"])).unwrap()
    }

    /// Waits until `cond` holds for the pod's status object.
    pub fn wait_status(
        &self,
        pod: &str,
        what: &str,
        limit: Duration,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let deadline = Instant::now() + scaled(limit);
        loop {
            let out = self.run(&["status", pod, "-o", "json"]);
            if out.status.success() {
                last = serde_json::from_slice(&out.stdout).unwrap();
                if cond(&last) {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status: {last:#}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pod_cgroup(&self, pod: &str) -> PathBuf {
        self.cgroup_parent.join(pod)
    }

    /// Pod directories left under the root.
    pub fn leftover_state(&self) -> Vec<String> {
        fs::read_dir(self.root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// Pods' data directories left under the data root.
    pub fn leftover_data(&self) -> Vec<String> {
        fs::read_dir(self.data.path().join("pods"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The directory of container `c`'s logs in pod `pod`'s data directory.
    pub fn log_dir(&self, pod: &str, c: &str) -> PathBuf {
        let prefix = format!("{pod}_");
        let data = fs::read_dir(self.data.path().join("pods"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no data directory of pod {pod}"));
        data.path().join("logs").join(c)
    }

    /// The live log file of the first instance of container `c` of `pod`.
    pub fn log_file(&self, pod: &str, c: &str) -> PathBuf {
        self.log_dir(pod, c).join("0.log")
    }

    /// Asserts no pod state, data and no pod cgroup is left.
    pub fn assert_clean(&self) {
        assert!(
            self.leftover_state().is_empty(),
            "state left: {:?}",
            self.leftover_state()
        );
        assert!(
            self.leftover_data().is_empty(),
            "data left: {:?}",
            self.leftover_data()
        );
        assert!(
            self.leftover_cgroups().is_empty(),
            "cgroups left: {:?}",
            self.leftover_cgroups()
        );
    }

    /// Cgroups left under the parent.
    pub fn leftover_cgroups(&self) -> Vec<String> {
        fs::read_dir(&self.cgroup_parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        for pod in self.leftover_state() {
            let _ = self.cmd(&["down", &pod, "--grace-period", "0"]).output();
        }
        for cg in self.leftover_cgroups() {
            let dir = self.cgroup_parent.join(cg);
            let _ = fs::write(dir.join("cgroup.kill"), "1");
            // Killed processes leave their cgroups as they are reaped: wait for that.
            let deadline = Instant::now() + Duration::from_secs(5);
            let populated = || {
                fs::read_to_string(dir.join("cgroup.events"))
                    .is_ok_and(|e| e.lines().any(|l| l == "populated 1"))
            };
            while populated() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            for leaf in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let _ = fs::remove_dir(leaf.path());
            }
            let _ = fs::remove_dir(&dir);
        }
        let _ = fs::remove_dir(&self.cgroup_parent);
    }
}

/// The inode of /proc/PID/ns/KIND, e.g. "pid:[4026531836]".
pub fn ns_of(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// An integer annotation or field read as i32.
pub fn as_pid(v: &serde_json::Value) -> i32 {
    v.as_str()
        .map(|s| s.parse().unwrap())
        .or(v.as_i64().map(|n| n as i32))
        .unwrap()
}

/// The host pid of container `name` while it runs, from the pod's
/// `launcher/container-pids` annotation (`a=123,b=456`).
pub fn container_pid(pod: &serde_json::Value, name: &str) -> Option<i32> {
    pod["metadata"]["annotations"]["launcher/container-pids"]
        .as_str()?
        .split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The status of app container `name` in a Pod object.
pub fn container<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

/// The status ("True"/"False") of one of the pod's conditions.
pub fn condition<'a>(pod: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    let all = pod["status"]["conditions"].as_array().unwrap();
    &all.iter().find(|c| c["type"] == kind).unwrap()["status"]
}

/// A crun container (its state under `root`), deleted, killed first if need be, on
/// drop. The runtime of the VM-tier tests that run real containers.
pub struct CrunContainer {
    pub root: PathBuf,
    pub id: String,
}

impl CrunContainer {
    /// `crun --root ROOT`, for the caller to add a subcommand to.
    pub fn crun(&self) -> Command {
        let mut c = Command::new("crun");
        c.arg("--root").arg(&self.root);
        c
    }
}

impl Drop for CrunContainer {
    fn drop(&mut self) {
        let _ = self
            .crun()
            .args(["delete", "--force", &self.id])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A stand-in for the host, so that network tests never touch the machine's own
/// network: a network namespace and a mount namespace made by the test (a `sleep`
/// holds them), with /var/lib under a tmpfs (the CNI plugins' IPAM files are
/// private to it) and a CNI configuration directory of its own. Commands enter it
/// with [`NetHost::enter`]. Dropping it ends the holder, and with the last process in
/// them the namespaces go, with the bridge, veths and rules in them.
pub struct NetHost {
    holder: Proc,
    pub conf_dir: TempDir,
}

impl NetHost {
    pub fn new(tag: &str) -> NetHost {
        use std::io::BufRead;
        let conf_dir = TempDir::new(&format!("cni-{tag}"));
        let mut holder = Proc::spawn(
            Command::new("unshare")
                .args(["--net", "--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("mount -t tmpfs -o mode=0755 cni /var/lib && ip link set lo up && echo ready && exec sleep 100000")
                .stdout(std::process::Stdio::piped()),
        );
        let mut line = String::new();
        let out = holder.child.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the test's network namespace was not made"
        );
        NetHost { holder, conf_dir }
    }

    pub fn pid(&self) -> i32 {
        self.holder.pid()
    }

    /// Makes `cmd` run in this host's network and mount namespaces, with its CNI
    /// configuration directory.
    pub fn enter(&self, cmd: &mut Command) {
        let open = |kind: &str| fs::File::open(format!("/proc/{}/ns/{kind}", self.pid())).unwrap();
        let (net, mnt) = (open("net"), open("mnt"));
        cmd.env("LAUNCHER_CNI_CONF_DIR", self.conf_dir.path())
            .env_remove("LAUNCHER_NETWORK");
        // SAFETY: setns is async-signal-safe; the fds live in the closure.
        unsafe {
            cmd.pre_exec(move || {
                for (fd, kind) in [(&net, libc::CLONE_NEWNET), (&mnt, libc::CLONE_NEWNS)] {
                    if libc::setns(fd.as_raw_fd(), kind) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// `sh -c SCRIPT` in this host; its output, asserting success.
    pub fn sh(&self, script: &str) -> String {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        self.enter(&mut c);
        let out = c.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{script:?} failed ({:?}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A test's directories shared with a pod's containers, which see the host's files
/// read-only otherwise (and have a /tmp of their own): YAML flow sequences for
/// `spec.volumes` (hostPath volumes `host-0`, `host-1` ...) and for a container's
/// `volumeMounts` (each at the same path).
pub fn host_dirs(dirs: &[&Path]) -> (String, String) {
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    for (i, d) in dirs.iter().enumerate() {
        let d = d.display();
        volumes.push(format!("{{name: host-{i}, hostPath: {{path: {d}}}}}"));
        mounts.push(format!("{{name: host-{i}, mountPath: {d}}}"));
    }
    (
        format!("[{}]", volumes.join(", ")),
        format!("[{}]", mounts.join(", ")),
    )
}

/// A bash in a detached tmux session on a socket of the test's own, as a person at a
/// terminal meets the launcher: keys typed, the screen read. Its environment names the
/// pods' roots, so `launcher` there sees what `pods` made. Killed on drop.
pub struct Tmux {
    /// Its socket and HOME.
    pub dir: TempDir,
}

impl Tmux {
    pub fn bash(pods: &Pods) -> Tmux {
        let dir = TempDir::new("tmux");
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir().display());
        let shell = Tmux { dir };
        let started = shell
            .tmux(&["new-session", "-d", "-x", "160", "-y", "50", "--"])
            .arg("env")
            .arg("-i")
            .arg(format!("PATH={path}"))
            .arg(format!("HOME={}", shell.dir.path().display()))
            .args(["TERM=xterm", "PS1=$ ", "LAUNCHER_NETWORK=none"])
            .arg(format!("LAUNCHER_ROOT={}", pods.root.path().display()))
            .arg(format!("LAUNCHER_DATA_ROOT={}", pods.data.path().display()))
            .arg(format!(
                "LAUNCHER_CGROUP_PARENT={}",
                pods.cgroup_parent.display()
            ))
            .args(["bash", "--norc", "--noprofile"])
            .status();
        assert!(started.is_ok_and(|s| s.success()), "tmux new-session");
        shell.until("$");
        shell
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(self.dir.path().join("socket"))
            .args(["-f", "/dev/null"])
            .args(args);
        c
    }

    /// tmux key names (`Enter`, `Tab`, `C-p`) or, after `-l`, literal text.
    pub fn keys(&self, keys: &[&str]) {
        let ok = self.tmux(&["send-keys", "-t", "0"]).args(keys).status();
        assert!(ok.is_ok_and(|s| s.success()), "send-keys {keys:?}");
    }

    /// Types `text` literally, no Enter.
    pub fn type_(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    pub fn line(&self, text: &str) {
        self.type_(text);
        self.keys(&["Enter"]);
    }

    /// The screen, each row without its trailing blanks, without the empty rows below.
    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "0"]).output();
        let text = String::from_utf8_lossy(&out.expect("capture-pane").stdout).into_owned();
        let rows: Vec<&str> = text.lines().map(str::trim_end).collect();
        rows.join("\n").trim_end().to_string() + "\n"
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn until(&self, text: &str) -> String {
        self.until_screen(&format!("{text:?} on the screen"), |s| s.contains(text))
    }

    /// Waits until the screen's last line ends in the prompt (after a detach, behind
    /// what the container's shell left on it): what is typed from here goes to this
    /// bash, not to a command that is still ending (a program that reads the
    /// terminal, as `exec -it` does, takes the keys typed before it has ended).
    pub fn prompt(&self) -> String {
        self.until_screen("the prompt back", |s| {
            s.lines()
                .last()
                .is_some_and(|l| l == "$" || l.ends_with(" $"))
        })
    }

    fn until_screen(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + scaled(Duration::from_secs(10));
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Clears the line being typed and the screen, and waits for the bare prompt.
    pub fn clear(&self) {
        self.keys(&["C-u", "C-l"]);
        let _ = self.tmux(&["clear-history", "-t", "0"]).status();
        wait_for("a cleared screen", Duration::from_secs(10), || {
            self.screen() == "$\n"
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}

/// The pause image's OCI archive (`make image`; in the VM, POD_IMAGE).
pub fn pause_image_archive() -> PathBuf {
    let path = std::env::var_os("POD_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/pause-image.tar"));
    assert!(
        path.exists(),
        "{} missing: run `make image`",
        path.display()
    );
    path
}
