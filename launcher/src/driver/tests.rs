//! The driver's wiring, against a fake kernel: no root, no namespaces, no processes.
//! The fake hands out pids and stand-in pidfds, records every call, and reports the
//! exits and signals a test scripts, through a pipe the loop polls as it would the
//! supervisor's signalfd.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::layout::Roots;
use crate::status::PodStatus;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Spawn(String),
    Exec(String, Vec<String>),
    Signal(i32, i32),
    KillContainer(String),
    KillPod,
    End(Keep),
}

/// What a test sees of the fake and scripts it with.
#[derive(Default)]
struct Script {
    calls: Vec<Call>,
    exits: Vec<(i32, Exit)>,
    /// The write ends of each spawned container's stdout and stderr, by pid.
    outputs: Vec<(i32, OwnedFd, OwnedFd)>,
    /// What containers wrote to their termination log, by name.
    last_words: Vec<(String, String)>,
}

struct Fake {
    script: Rc<RefCell<Script>>,
    signals_rd: OwnedFd,
    signals_wr: OwnedFd,
    next_pid: i32,
    /// (pid, raw fd of the stand-in pidfd handed out for it).
    pidfds: Vec<(i32, RawFd)>,
}

impl Fake {
    fn new() -> (Fake, Rc<RefCell<Script>>) {
        let (rd, wr) = crate::sys::pipe().unwrap();
        let _ = nix::fcntl::fcntl(
            &rd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let script = Rc::new(RefCell::new(Script::default()));
        let fake = Fake {
            script: script.clone(),
            signals_rd: rd,
            signals_wr: wr,
            next_pid: 100,
            pidfds: Vec::new(),
        };
        (fake, script)
    }

    /// A child with a stand-in pidfd (one end of a pipe nobody writes).
    fn child(&mut self) -> Child {
        let pid = self.next_pid;
        self.next_pid += 1;
        let (rd, _wr) = crate::sys::pipe().unwrap();
        self.pidfds.push((pid, rd.as_raw_fd()));
        Child { pid, pidfd: rd }
    }
}

impl Kernel for Fake {
    fn signal_fd(&self) -> BorrowedFd<'_> {
        self.signals_rd.as_fd()
    }

    fn signals(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        match crate::sys::read(self.signals_rd.as_raw_fd(), &mut buf) {
            Ok(n) => buf[..n].iter().map(|&s| i32::from(s)).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn reap(&mut self) -> Vec<(i32, Exit)> {
        std::mem::take(&mut self.script.borrow_mut().exits)
    }

    fn spawn(
        &mut self,
        _pod: Resolved,
        c: &crate::spec::ContainerSpec,
        stdio: crate::process::Stdio,
    ) -> Result<Child, NotStarted> {
        let crate::process::Stdio::Pipes { stdout, stderr, .. } = stdio else {
            panic!("a container's stdio is its pipes here");
        };
        let child = self.child();
        let mut script = self.script.borrow_mut();
        script.calls.push(Call::Spawn(c.name.clone()));
        script.outputs.push((child.pid, stdout, stderr));
        Ok(child)
    }

    fn terminal(&mut self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    fn exec(
        &mut self,
        _pod: Resolved,
        c: &crate::spec::ContainerSpec,
        _main: Option<BorrowedFd>,
        argv: &[String],
    ) -> Result<Child, String> {
        let call = Call::Exec(c.name.clone(), argv.to_vec());
        self.script.borrow_mut().calls.push(call);
        Ok(self.child())
    }

    fn signal(&mut self, pidfd: &OwnedFd, signal: i32) {
        let raw = pidfd.as_raw_fd();
        let pid = self
            .pidfds
            .iter()
            .find(|(_, fd)| *fd == raw)
            .map_or(0, |p| p.0);
        self.script
            .borrow_mut()
            .calls
            .push(Call::Signal(pid, signal));
    }

    fn kill_container(&mut self, name: &str) {
        let call = Call::KillContainer(name.to_string());
        self.script.borrow_mut().calls.push(call);
    }

    fn kill_pod(&mut self) -> bool {
        self.script.borrow_mut().calls.push(Call::KillPod);
        true
    }

    fn oom_kills(&self, _name: &str) -> u64 {
        0
    }

    fn pause_pid(&self) -> i32 {
        1
    }

    fn pause_exiting(&self) -> bool {
        false
    }

    fn disk_usage(&self, _dir: &Path) -> u64 {
        0
    }

    fn layer_usage(&self, _name: &str) -> Option<u64> {
        None
    }

    fn termination_log(&self, name: &str, _max: u64) -> Option<Vec<u8>> {
        let script = self.script.borrow();
        let words = script.last_words.iter().find(|(n, _)| n == name);
        words.map(|(_, w)| w.as_bytes().to_vec())
    }

    fn end(&mut self, keep: Keep) -> anyhow::Result<()> {
        self.script.borrow_mut().calls.push(Call::End(keep));
        Ok(())
    }
}

/// A pod from `manifest` on the fake, its state and logs under a temp dir.
struct Bench {
    driver: Option<Driver<Fake>>,
    script: Rc<RefCell<Script>>,
    signals: OwnedFd,
    /// Where its state and logs are; removed with the bench.
    _dir: crate::testing::TempDir,
    paths: PodPaths,
}

impl Bench {
    fn new(tag: &str, manifest: &str) -> Bench {
        let dir = crate::testing::TempDir::new(&format!("driver-{tag}"));
        let roots = Roots {
            state: dir.join("state"),
            data: dir.join("data"),
        };
        let (spec, _) = crate::kube::parse(manifest).unwrap();
        let paths = roots.pod(&spec.name, "0123-abcd");
        std::fs::create_dir_all(&paths.state).unwrap();
        let (fake, script) = Fake::new();
        let signals = fake.signals_wr.try_clone().unwrap();
        let parts = Parts {
            paths: paths.clone(),
            rotation: Rotation::default(),
            inputs: Inputs::default(),
            facts: Facts::default(),
            terminal: None,
            notify: None,
            warnings: Vec::new(),
        };
        let pod = Pod::new(spec, std::time::SystemTime::now());
        let mut driver = Driver::new(pod, fake, parts).unwrap();
        driver.begin();
        Bench {
            driver: Some(driver),
            script,
            signals,
            _dir: dir,
            paths,
        }
    }

    fn driver(&mut self) -> &mut Driver<Fake> {
        self.driver.as_mut().unwrap()
    }

    /// One turn of the loop.
    fn turn(&mut self) {
        self.driver().turn();
    }

    fn finished(&mut self) -> bool {
        self.driver().pod.finished()
    }

    fn finish(&mut self) -> Outcome {
        self.driver.take().unwrap().finish()
    }

    fn calls(&self) -> Vec<Call> {
        self.script.borrow().calls.clone()
    }

    fn pid_of(&self, container: &str) -> i32 {
        let driver = self.driver.as_ref().unwrap();
        let c = driver
            .pod
            .spec()
            .all_containers()
            .position(|c| c.name == container);
        let slot = &driver.slots[c.unwrap()];
        slot.main.as_ref().map(|m| m.child.pid).unwrap()
    }

    /// The kernel reports a signal to the supervisor.
    fn signal(&self, signal: i32) {
        nix::unistd::write(&self.signals, &[signal as u8]).unwrap();
    }

    /// Process `pid` exits with `code`; SIGCHLD follows.
    fn exit(&self, pid: i32, code: i32) {
        let exit = Exit {
            code,
            signal: None,
            oom: false,
            message: None,
        };
        self.script.borrow_mut().exits.push((pid, exit));
        self.signal(libc::SIGCHLD);
    }

    fn status(&self) -> PodStatus {
        crate::state::read_json(&self.paths.status()).unwrap()
    }
}

const TWO: &str = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - {name: a, command: [a]}
  - {name: b, command: [b]}
";

#[test]
fn each_container_is_spawned_and_an_exit_becomes_its_status() {
    let mut bench = Bench::new("exit", TWO);
    assert_eq!(
        bench.calls(),
        [Call::Spawn("a".into()), Call::Spawn("b".into())]
    );
    let st = bench.status();
    assert!(st.container_statuses[0].state.running.is_some(), "{st:?}");
    bench.exit(bench.pid_of("a"), 3);
    bench.turn();
    let st = bench.status();
    let a = st.container_statuses[0].state.terminated.as_ref().unwrap();
    assert_eq!((a.exit_code, a.reason.as_str()), (3, "Error"));
    assert!(st.container_statuses[1].state.running.is_some());
    assert!(!bench.finished());
    bench.exit(bench.pid_of("b"), 0);
    bench.turn();
    assert!(bench.finished());
    let calls_before = bench.calls().len();
    assert_eq!(bench.finish().phase, Phase::Failed);
    // A pod that ended on its own keeps its files for `status` and `logs`.
    assert_eq!(bench.calls()[calls_before..], [Call::End(Keep::Files)]);
}

#[test]
fn a_stop_becomes_sigterm_to_every_main_process_and_the_pods_end() {
    let mut bench = Bench::new("stop", TWO);
    let (a, b) = (bench.pid_of("a"), bench.pid_of("b"));
    bench.signal(libc::SIGTERM);
    bench.turn();
    let calls = bench.calls();
    assert!(calls.contains(&Call::Signal(a, libc::SIGTERM)), "{calls:?}");
    assert!(calls.contains(&Call::Signal(b, libc::SIGTERM)), "{calls:?}");
    assert!(!calls.iter().any(|c| matches!(c, Call::KillPod)));
    bench.exit(a, 143);
    bench.exit(b, 143);
    bench.turn();
    assert!(bench.finished());
    bench.finish();
    // A stop asked for takes the pod's files too.
    assert_eq!(bench.calls().last(), Some(&Call::End(Keep::Nothing)));
}

#[test]
fn an_exec_probe_becomes_an_exec_call_and_its_exit_a_verdict() {
    let mut bench = Bench::new(
        "probe",
        "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    command: [a]
    readinessProbe:
      exec: {command: [check, ready]}
      periodSeconds: 1
",
    );
    let probe = |calls: &[Call]| {
        calls
            .iter()
            .any(|c| *c == Call::Exec("a".into(), vec!["check".into(), "ready".into()]))
    };
    // The first probe is due at once; the next turn starts it.
    for _ in 0..3 {
        if probe(&bench.calls()) {
            break;
        }
        bench.turn();
    }
    assert!(probe(&bench.calls()), "{:?}", bench.calls());
    assert!(!bench.status().container_statuses[0].ready);
    // The probe's process is the one spawned after a's main process.
    bench.exit(bench.pid_of("a") + 1, 0);
    bench.turn();
    assert!(bench.status().container_statuses[0].ready);
}

#[test]
fn a_backlog_of_output_does_not_hold_an_exit_back() {
    let mut bench = Bench::new("flood", TWO);
    let a = bench.pid_of("a");
    let stdout = {
        let script = bench.script.borrow();
        let (_, out, _) = script.outputs.iter().find(|(pid, _, _)| *pid == a).unwrap();
        out.try_clone().unwrap()
    };
    // A megabyte waits in a's stdout (a process it left behind writes on).
    let size = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20)).unwrap();
    let _ = nix::fcntl::fcntl(
        &stdout,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let line = [b'x'; 1023]
        .iter()
        .chain(b"\n")
        .copied()
        .collect::<Vec<u8>>();
    while nix::unistd::write(&stdout, &line).is_ok() {}
    let waiting = |fd: &OwnedFd| {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD stores an int; on either end of a pipe it is what the pipe holds.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert_eq!(ret, 0);
        n as usize
    };
    assert_eq!(waiting(&stdout), size as usize);
    bench.exit(a, 0);
    bench.turn();
    // One turn handled the exit, having read a bounded part of the backlog.
    let st = bench.status();
    assert!(
        st.container_statuses[0].state.terminated.is_some(),
        "{st:?}"
    );
    let read = size as usize - waiting(&stdout);
    // Two rounds of 8 x 8 KiB at most: the wake-up's, and the exit's last words.
    assert!(read > 0 && read <= 2 * 8 * 8192, "read {read} of {size}");
    let log = bench.paths.logs("a").join("0.log");
    assert!(std::fs::metadata(log).unwrap().len() >= read as u64);
}

#[test]
fn an_exit_carries_the_termination_log_else_after_a_failure_the_logs_end() {
    let manifest = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - {name: a, command: [a], terminationMessagePolicy: FallbackToLogsOnError}
  - {name: b, command: [b], terminationMessagePolicy: FallbackToLogsOnError}
";
    let mut bench = Bench::new("words", manifest);
    let (a, b) = (bench.pid_of("a"), bench.pid_of("b"));
    (bench.script.borrow_mut().last_words).push(("a".into(), "disk full".into()));
    let stdout = {
        let script = bench.script.borrow();
        let (_, out, _) = script.outputs.iter().find(|(pid, _, _)| *pid == b).unwrap();
        out.try_clone().unwrap()
    };
    nix::unistd::write(&stdout, b"first\nlast words\n").unwrap();
    bench.exit(a, 1);
    bench.exit(b, 2);
    bench.turn();
    let st = bench.status();
    let message = |i: usize| {
        let t = st.container_statuses[i].state.terminated.as_ref();
        t.and_then(|t| t.message.clone())
    };
    // The file wins over the log; an empty one after a failure, the log's end.
    assert_eq!(message(0).as_deref(), Some("disk full"));
    assert_eq!(message(1).as_deref(), Some("first\nlast words\n"));
}
