//! Every example a user is shown runs here as written and does what its text says: the
//! examples of `launcher --help` and of each command's help, read from the binary under
//! test, and the README's shell blocks, read from the README, in order.
//!
//! Each example runs through bash (`bash -c LINE`, as typed at a prompt) in a world of
//! its own: a state root, a cgroup parent and a network namespace of the test's (the
//! pods' default network is a CNI bridge there), a working directory holding the files
//! the example names (pod.yaml, dump.sql ...). Whatever the example needs to find (a pod
//! called web, a volume called data) is made first; what it says it does is checked
//! after, from the outside. An example no scenario knows fails the run, so a new example
//! cannot go untested. Interactive ones (`exec -it`, `attach -it`) run in a real bash in
//! tmux. Examples that set memory or CPU limits need those controllers: the VM tier
//! runs them.
#![allow(unsafe_code)] // kill(2) of an example's process group

use pod_tests::{bin_dir, cgroup2_mount, container, wait_for, Pods, TempDir, Tmux};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The help pages with examples, as `launcher PAGE --help` names them ("" is the
/// command's own).
const PAGES: &[&str] = &[
    "",
    "up",
    "down",
    "ps",
    "exec",
    "attach",
    "logs",
    "events",
    "top",
    "volume",
    "wait",
    "completion",
];

fn launcher_help(page: &str) -> String {
    let out = Command::new(pod_tests::bin("launcher"))
        .args(page.split_whitespace())
        .arg("--help")
        .output()
        .expect("launcher --help");
    assert!(out.status.success(), "launcher {page} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of a help page's "Examples:" section.
fn help_examples(page: &str) -> Vec<String> {
    let help = launcher_help(page);
    let mut lines = help.lines().skip_while(|l| *l != "Examples:");
    lines.next();
    lines
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Examples that set memory or CPU limits: they need those controllers (the VM tier).
fn needs_controllers(line: &str) -> bool {
    (line.contains("--memory") || line.contains("--cpu")) && !line.contains("--dry-run")
}

/// A world of one example: its pods (networked), its working directory.
struct World {
    pods: Pods,
    cwd: TempDir,
    /// Where started examples' output goes (not the working directory: it may be served).
    out: TempDir,
}

/// A finished example.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts it exited 0; its stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "failed: {self:?}");
        &self.stdout
    }
}

/// A started example, in a process group of its own (as a job at a prompt).
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until its stdout contains `text`.
    fn until(&mut self, text: &str) {
        let limit = Duration::from_secs(20);
        let what = format!("{text:?} in the output");
        wait_for(&what, limit, || self.stdout().contains(text));
    }

    /// ^C, as the terminal sends it: SIGINT to the job's process group.
    fn interrupt(&self) {
        // SAFETY: kill(2) on the group this test made.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGINT) };
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for its end (20 s at most).
    fn wait(mut self) -> Out {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: status.code().unwrap_or(128 + status.signal().unwrap_or(0)),
            stdout: self.stdout(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.still_running() {
            // SAFETY: kill(2) on the group this test made.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

impl World {
    fn new(tag: &str) -> World {
        World {
            pods: Pods::networked(tag),
            cwd: TempDir::new(&format!("cwd-{tag}")),
            out: TempDir::new(&format!("out-{tag}")),
        }
    }

    fn file(&self, name: &str, text: &str) {
        std::fs::write(self.cwd.path().join(name), text).expect("write a file of the example");
    }

    /// `bash -c LINE` as typed at a prompt in this world: `launcher` on PATH, the
    /// world's roots in the variables the launcher reads, its network namespace.
    fn shell(&self, line: &str) -> Command {
        let shell = if Path::new("/bin/bash").exists() {
            "bash"
        } else {
            "sh"
        };
        let mut c = Command::new(shell);
        c.arg("-c").arg(line).current_dir(self.cwd.path());
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", bin_dir().display()))
            .env("HOME", self.cwd.path())
            .env("LAUNCHER_ROOT", self.pods.root.path())
            .env("LAUNCHER_DATA_ROOT", self.pods.data.path())
            .env("LAUNCHER_CGROUP_PARENT", &self.pods.cgroup_parent)
            .env_remove("LAUNCHER_LOG_MAX_SIZE")
            .env_remove("LAUNCHER_LOG_MAX_FILES")
            .env_remove("LAUNCHER_CNI_BIN_DIR");
        self.pods.net().enter(&mut c);
        // Entering the mount namespace took the working directory back to its root.
        let cwd = std::ffi::CString::new(self.cwd.path().as_os_str().as_encoded_bytes());
        let cwd = cwd.expect("a path without NUL");
        // SAFETY: chdir(2) is async-signal-safe; the string lives in the closure.
        unsafe {
            c.pre_exec(move || match libc::chdir(cwd.as_ptr()) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
        c.process_group(0);
        c
    }

    /// Runs `line` to its end, stdin empty.
    fn run(&self, line: &str) -> Out {
        let running = self.start(line);
        running.wait()
    }

    fn start(&self, line: &str) -> Running {
        let n = std::fs::read_dir(self.out.path()).map_or(0, |d| d.count());
        let stdout = self.out.path().join(format!("{n}.out"));
        let stderr = self.out.path().join(format!("{n}.err"));
        let file = |p: &Path| std::fs::File::create(p).expect("output file");
        let child = self
            .shell(line)
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .expect("bash");
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// `launcher up -d --name NAME ARGS...`: a pod the example acts on.
    fn up(&self, name: &str, args: &[&str]) {
        let mut all = vec!["up", "-d", "--name", name];
        all.extend_from_slice(args);
        self.pods.ok(&all);
    }

    fn sleeper(&self, name: &str) {
        self.up(name, &["-c", &format!("{name}=sleep 3600")]);
    }

    fn up_yaml(&self, yaml: &str) {
        self.pods.up_detached(yaml, &[]);
    }

    fn names(&self) -> Vec<String> {
        let out = self.pods.ok(&["ps", "-o", "name", "--no-headers"]);
        out.lines()
            .map(|l| l.trim_start_matches("pod/").to_string())
            .collect()
    }

    fn phase(&self, pod: &str) -> String {
        self.pods.status(pod)["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the pod's `container` has logged `text`.
    fn logged(&self, pod: &str, container: &str, text: &str) {
        wait_for(
            &format!("{text:?} in {pod}/{container}'s log"),
            Duration::from_secs(20),
            || {
                let out = self.pods.run(&["logs", pod, "-c", container]);
                String::from_utf8_lossy(&out.stdout).contains(text)
            },
        );
    }

    /// A bash in tmux in this world's working directory, for the interactive examples.
    fn terminal(&self) -> Tmux {
        let t = Tmux::bash(&self.pods);
        t.line(&format!("cd {}", self.cwd.path().display()));
        t.clear();
        t
    }
}

/// The row of `pod` in a `ps`-like table, split into words.
fn row<'a>(table: &'a str, first: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&first))
}

/// `ps`' output shows pause as PID 1 of the pod.
fn pause_is_pid_1(ps: &str) {
    let one = row(ps, "1").unwrap_or_else(|| panic!("no PID 1:\n{ps}"));
    assert_eq!(one.last(), Some(&"pause"), "{ps}");
}

/// Runs an interactive shell example in tmux: a command in it, its own hostname, exit.
fn shell_in_pod(w: &World, line: &str, pod: &str) {
    let t = w.terminal();
    t.line(line);
    t.line("echo in-$((6*7)) host-$(hostname)");
    t.until(&format!("in-42 host-{pod}"));
    t.line("exit");
    t.prompt();
    t.line("echo rc=$?");
    t.until("rc=0");
}

const HELLO_YAML: &str = "apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: busybox
    command: [echo, hello from pod.yaml]
";

/// One help example: what it needs made first, the example, what it says it does.
fn example(w: &World, line: &str) {
    match line {
        // ---- launcher --help
        "launcher up --name web --restart OnFailure -c server='busybox httpd -f -p 8080 -h /etc' -c client='sh -c \"sleep 1; curl -s 127.0.0.1:8080/hostname\"'" => {
            // The client reads the pod's /etc/hostname from the server, over the pod's
            // own loopback; the pod runs in the foreground until ^C.
            let mut up = w.start(line);
            up.until("[client] web");
            // Its output comes before its exit is told: wait for the status to say so.
            w.pods.wait_status("web", "client Completed", Duration::from_secs(10), |p| {
                container(p, "client")["state"]["terminated"]["reason"] == "Completed"
            });
            up.interrupt();
            let out = up.wait();
            assert_eq!(out.code, 0, "{out:?}");
            assert!(out.stderr.contains("pod web stopped"), "{out:?}");
            assert!(w.names().is_empty());
        }
        "launcher up -d --name db --memory 256Mi --cpu 500m -c db='sleep 3600'" => {
            assert_eq!(w.run(line).ok().trim(), "db");
            let cgroup = w.pods.pod_cgroup("db");
            let read = |f: &str| std::fs::read_to_string(cgroup.join(f)).expect(f);
            assert_eq!(read("memory.max").trim(), (256u64 << 20).to_string());
            assert_eq!(read("cpu.max").trim(), "50000 100000");
            assert_eq!(w.phase("db"), "Running");
        }
        "launcher up -d --name site -v \"$PWD\":/srv -c web='busybox httpd -f -p 80 -h /srv' -p 8080:80" => {
            w.file("index.html", "<h1>the current directory</h1>\n");
            assert_eq!(w.run(line).ok().trim(), "site");
            let page = w.pods.net().sh("curl -sf --retry 20 --retry-delay 0 --retry-all-errors http://127.0.0.1:8080/");
            assert_eq!(page, "<h1>the current directory</h1>\n");
        }
        "launcher up -d --name offline --network none -c job='sleep 600'" => {
            assert_eq!(w.run(line).ok().trim(), "offline");
            let pod = w.pods.status("offline");
            assert!(pod["status"].get("podIP").is_none(), "{pod}");
            // Only the loopback.
            let dev = w.pods.ok(&["exec", "offline", "--", "cat", "/proc/net/dev"]);
            let links: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
            assert_eq!(links, ["lo"], "{dev}");
        }
        "launcher up -f pod.yaml" => {
            w.file("pod.yaml", HELLO_YAML);
            let out = w.run(line);
            assert!(out.ok().contains("hello from pod.yaml"), "{out:?}");
        }
        "launcher up -d -f pod.yaml -f configmaps-and-secrets.yaml" => {
            w.file("pod.yaml", "apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: greeting}}
    volumeMounts: [{name: creds, mountPath: /etc/creds}]
  volumes:
  - name: creds
    secret: {secretName: creds}
");
            w.file("configmaps-and-secrets.yaml", "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
");
            assert_eq!(w.run(line).ok().trim(), "app");
            assert_eq!(w.pods.ok(&["exec", "app", "--", "printenv", "GREETING"]), "hello\n");
            assert_eq!(w.pods.ok(&["exec", "app", "--", "cat", "/etc/creds/password"]), "s3cret");
        }
        "launcher up --name db -c db='sleep 3600' --memory 256Mi --dry-run -o yaml > pod.yaml" => {
            w.run(line).ok();
            let yaml = std::fs::read_to_string(w.cwd.path().join("pod.yaml")).expect("pod.yaml");
            assert!(yaml.contains("kind: Pod") && yaml.contains("name: db"), "{yaml}");
            assert!(yaml.contains("memory: 256Mi"), "{yaml}");
            assert!(w.names().is_empty(), "a dry run started a pod");
            // The file is a manifest that `up -f` takes.
            w.run("launcher up -f pod.yaml --dry-run -o json").ok();
        }
        "launcher ps" => {
            w.sleeper("db");
            let out = w.run(line);
            let table = out.ok();
            assert!(table.starts_with("NAME "), "{table}");
            assert_eq!(row(table, "db").map(|r| r[1..3].to_vec()), Some(vec!["1/1", "Running"]), "{table}");
        }
        "launcher status db -o json" => {
            w.sleeper("db");
            let pod: serde_json::Value = serde_json::from_str(w.run(line).ok()).expect("JSON");
            assert_eq!(pod["kind"], "Pod");
            assert_eq!(pod["metadata"]["name"], "db");
            assert_eq!(pod["status"]["phase"], "Running");
        }
        "launcher exec db -- ps" => {
            w.sleeper("db");
            pause_is_pid_1(w.run(line).ok());
        }
        "launcher exec -it db -- sh" => {
            w.sleeper("db");
            shell_in_pod(w, line, "db");
        }
        "launcher top db --containers" => {
            w.up("db", &["-c", "db=sleep 3600", "-c", "backup=sleep 3600"]);
            let out = w.run(line);
            let table = out.ok();
            assert!(table.starts_with("POD ") && table.contains("CPU(cores)"), "{table}");
            for c in ["db", "backup"] {
                let found = table.lines().any(|l| l.split_whitespace().take(2).eq(["db", c]));
                assert!(found, "no row for container {c}:\n{table}");
            }
        }
        "launcher logs db -c db -f" => {
            w.up("db", &["-c", "db=sh -c 'while true; do echo tick; sleep 0.2; done'"]);
            let mut logs = w.start(line);
            logs.until("tick\ntick\n");
            // It follows until the pod is gone, then ends by itself.
            w.pods.ok(&["down", "db", "--grace-period", "0"]);
            assert_eq!(logs.wait().code, 0);
        }
        "launcher down db --grace-period 10s" => {
            w.sleeper("db");
            assert_eq!(w.run(line).ok(), "pod \"db\" deleted\n");
            assert!(w.names().is_empty());
            w.pods.assert_clean();
        }

        // ---- launcher up --help
        "launcher up --name hello --restart Never -c hello='echo hello from a pod'" => {
            let out = w.run(line);
            assert_eq!(out.ok(), "[hello] hello from a pod\n", "{out:?}");
            assert!(w.names().is_empty());
        }
        "launcher up --name build --restart Never -v \"$PWD\":/src -c make='make -C /src'" => {
            w.file("Makefile", "built.txt:\n\techo built in the pod > $@\n");
            let out = w.run(line);
            assert_eq!(out.code, 0, "{out:?}");
            let built = std::fs::read_to_string(w.cwd.path().join("built.txt"));
            assert_eq!(built.expect("built.txt, through the volume"), "built in the pod\n");
        }

        // ---- launcher down --help
        "launcher down web" => {
            w.sleeper("web");
            w.sleeper("db");
            assert_eq!(w.run(line).ok(), "pod \"web\" deleted\n");
            assert_eq!(w.names(), ["db"]);
        }
        "launcher down web db --grace-period 0" => {
            for p in ["web", "db", "cache"] {
                w.sleeper(p);
            }
            let out = w.run(line);
            assert_eq!(out.ok(), "pod \"web\" deleted\npod \"db\" deleted\n");
            assert_eq!(w.names(), ["cache"]);
        }
        "launcher down -l app=web" => {
            w.up("web", &["-l", "app=web", "-c", "web=sleep 3600"]);
            w.up("web2", &["-l", "app=web,tier=2", "-c", "web=sleep 3600"]);
            w.up("db", &["-l", "app=db", "-c", "db=sleep 3600"]);
            w.run(line).ok();
            assert_eq!(w.names(), ["db"]);
        }
        "launcher down --all" => {
            w.sleeper("web");
            w.sleeper("db");
            w.run(line).ok();
            assert!(w.names().is_empty());
            w.pods.assert_clean();
        }
        "launcher down pod/web --ignore-not-found" => {
            // Not there: a success, silently (kubectl delete --ignore-not-found).
            let out = w.run(line);
            assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""));
            w.sleeper("web");
            assert_eq!(w.run(line).ok(), "pod \"web\" deleted\n");
        }

        // ---- launcher ps --help
        "launcher ps -o wide" => {
            w.sleeper("web");
            let out = w.run(line);
            let table = out.ok();
            assert!(table.contains(" IP "), "{table}");
            let web = row(table, "web").expect("web's row");
            assert!(web.iter().any(|c| c.starts_with("10.")), "no pod IP:\n{table}");
        }
        "launcher ps web db" => {
            for p in ["web", "db", "cache"] {
                w.sleeper(p);
            }
            let out = w.run(line);
            let table = out.ok();
            assert!(row(table, "web").is_some() && row(table, "db").is_some(), "{table}");
            assert!(row(table, "cache").is_none(), "{table}");
        }
        "launcher ps pod/web -o yaml" => {
            w.sleeper("web");
            w.sleeper("db");
            let out = w.run(line);
            let yaml = out.ok();
            assert!(yaml.contains("kind: Pod") && yaml.contains("name: web"), "{yaml}");
            assert!(!yaml.contains("name: db"), "{yaml}");
        }
        "launcher ps -o name --no-headers" => {
            w.sleeper("web");
            w.sleeper("db");
            assert_eq!(w.run(line).ok(), "pod/db\npod/web\n");
        }
        "launcher ps -l app=web,tier!=db --show-labels" => {
            w.up("front", &["-l", "app=web,tier=front", "-c", "c=sleep 3600"]);
            w.up("store", &["-l", "app=web,tier=db", "-c", "c=sleep 3600"]);
            w.up("api", &["-l", "app=api", "-c", "c=sleep 3600"]);
            let out = w.run(line);
            let table = out.ok();
            assert!(table.lines().next().is_some_and(|h| h.ends_with("LABELS")), "{table}");
            let front = row(table, "front").expect("front's row");
            assert_eq!(front.last(), Some(&"app=web,tier=front"), "{table}");
            assert!(row(table, "store").is_none() && row(table, "api").is_none(), "{table}");
        }
        "launcher ps -l 'env in (prod,stage),!canary'" => {
            w.up("prod", &["-l", "env=prod", "-c", "c=sleep 3600"]);
            w.up("stage", &["-l", "env=stage", "-c", "c=sleep 3600"]);
            w.up("canary", &["-l", "env=prod,canary=yes", "-c", "c=sleep 3600"]);
            w.up("dev", &["-l", "env=dev", "-c", "c=sleep 3600"]);
            let out = w.run(line);
            let shown: Vec<&str> = out.ok().lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
            assert_eq!(shown, ["prod", "stage"]);
        }

        // ---- launcher exec --help
        "launcher exec web -- ps" => {
            w.sleeper("web");
            pause_is_pid_1(w.run(line).ok());
        }
        "launcher exec -it web -- sh" => {
            w.sleeper("web");
            shell_in_pod(w, line, "web");
        }
        "launcher exec -i web -c db -- sh -c 'cat > /tmp/dump' < dump.sql" => {
            w.up("web", &["-c", "web=sleep 3600", "-c", "db=sleep 3600"]);
            let dump = "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\n";
            w.file("dump.sql", dump);
            w.run(line).ok();
            assert_eq!(w.pods.ok(&["exec", "web", "-c", "db", "--", "cat", "/tmp/dump"]), dump);
            // In the db container's own /tmp, not web's.
            let web = w.pods.run(&["exec", "web", "-c", "web", "--", "cat", "/tmp/dump"]);
            assert!(!web.status.success());
        }

        // ---- launcher attach --help
        "launcher attach web" => {
            w.up("web", &["-c", "web=sh -c 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done'"]);
            w.logged("web", "web", "tick 3");
            let mut attach = w.start(line);
            // Its output from now on: not the earlier lines.
            attach.until("tick");
            assert!(!attach.stdout().contains("tick 1\n"), "{}", attach.stdout());
            attach.interrupt();
            assert_eq!(attach.wait().code, 130);
            assert_eq!(w.phase("web"), "Running");
        }
        "launcher attach -it shell" => {
            w.up_yaml("apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - {name: shell, image: busybox, command: [sh], stdin: true, tty: true}
");
            let t = w.terminal();
            t.line(line);
            t.until("If you don't see a command prompt, try pressing enter.");
            t.line("echo in-$((6*7)) host-$(hostname)");
            t.until("in-42 host-shell");
            // ctrl-p ctrl-q: the session ends, the shell goes on.
            t.keys(&["C-p", "C-q"]);
            t.prompt();
            t.line("echo rc=$?");
            t.until("rc=0");
            assert_eq!(w.phase("shell"), "Running");
        }
        "launcher attach -i worker -c queue < jobs.txt" => {
            w.up_yaml("apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  restartPolicy: Never
  containers:
  - name: queue
    image: busybox
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read job; do echo \"did $job\"; done; echo queue empty']
");
            w.file("jobs.txt", "backup\nreport\n");
            let out = w.run(line);
            assert_eq!(out.ok(), "did backup\ndid report\nqueue empty\n", "{out:?}");
            w.pods.wait_status("worker", "Succeeded", Duration::from_secs(10), |p| p["status"]["phase"] == "Succeeded");
        }

        // ---- launcher logs --help
        "launcher logs web" => {
            w.up("web", &["-c", "web=sh -c 'echo hello from web; exec sleep 3600'", "-c", "sidecar=sleep 3600"]);
            w.logged("web", "web", "hello");
            let out = w.run(line);
            assert_eq!(out.ok(), "hello from web\n");
            assert!(out.stderr.contains("Defaulted container \"web\" out of: web, sidecar"), "{out:?}");
        }
        "launcher logs web sidecar -f" => {
            w.up("web", &["-c", "web=sleep 3600", "-c", "sidecar=sh -c 'while true; do echo sidecar tick; sleep 0.2; done'"]);
            let mut logs = w.start(line);
            logs.until("sidecar tick\nsidecar tick\n");
            w.pods.ok(&["down", "web", "--grace-period", "0"]);
            assert_eq!(logs.wait().code, 0);
        }
        "launcher logs pod/web -c app --tail 20 --timestamps" => {
            w.up("web", &["-c", "app=sh -c 'seq 1 30; exec sleep 3600'"]);
            w.logged("web", "app", "30");
            let out = w.run(line);
            let lines: Vec<&str> = out.ok().lines().collect();
            assert_eq!(lines.len(), 20, "{out:?}");
            for (n, l) in (11..=30).zip(&lines) {
                // An RFC 3339 time, then the line.
                let (time, text) = l.split_once(' ').expect("a timestamp");
                assert!(time.len() > 20 && time.contains('T') && time.ends_with('Z'), "{l}");
                assert_eq!(text, n.to_string());
            }
        }
        "launcher logs web -p" => {
            // A container whose first run fails; the second stays. -p shows the first.
            w.up(
                "web",
                &["--backoff-scale", "0.01", "-v", &format!("{}:/work", w.cwd.path().display()), "-c",
                  "web=sh -c 'n=$(cat /work/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /work/n; echo instance $n; [ $n -gt 1 ] || exit 1; exec sleep 3600'"],
            );
            w.logged("web", "web", "instance 2");
            assert_eq!(w.run(line).ok(), "instance 1\n");
            assert_eq!(w.run("launcher logs web").ok(), "instance 2\n");
        }
        "launcher logs web --all-containers --prefix --since 10m" => {
            w.up_yaml("apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  initContainers:
  - {name: setup, image: busybox, command: [echo, set up]}
  containers:
  - {name: web, image: busybox, command: [sh, -c, 'echo serving; exec sleep 3600']}
  - {name: sidecar, image: busybox, command: [sh, -c, 'echo watching; exec sleep 3600']}
");
            w.logged("web", "sidecar", "watching");
            w.logged("web", "web", "serving");
            let out = w.run(line);
            assert_eq!(out.ok(), "[pod/web/setup] set up\n[pod/web/web] serving\n[pod/web/sidecar] watching\n");
        }
        "launcher logs -l app=web --prefix" => {
            for (pod, app) in [("web-1", "web"), ("web-2", "web"), ("db", "db")] {
                let c = format!("{pod}=sh -c 'echo I am {pod}; exec sleep 3600'");
                w.up(pod, &["-l", &format!("app={app}"), "-c", &c]);
                w.logged(pod, pod, "I am");
            }
            let out = w.run(line);
            let mut lines: Vec<&str> = out.ok().lines().collect();
            lines.sort();
            assert_eq!(lines, ["[pod/web-1/web-1] I am web-1", "[pod/web-2/web-2] I am web-2"]);
        }

        // ---- launcher events --help
        "launcher events web" => {
            w.sleeper("web");
            w.sleeper("db");
            let out = w.run(line);
            let table = out.ok();
            assert!(table.starts_with("LAST SEEN"), "{table}");
            assert!(table.contains("Created container: web") && table.contains("Started container web"), "{table}");
            assert!(!table.contains("pod/db"), "{table}");
        }
        "launcher events web -w" => {
            w.sleeper("web");
            let mut events = w.start(line);
            events.until("Started container web");
            // New events as they happen, until the pod is gone.
            w.pods.ok(&["down", "web", "--grace-period", "0"]);
            let out = events.wait();
            assert_eq!(out.code, 0, "{out:?}");
            assert!(out.stdout.contains("Stopping container web"), "{out:?}");
        }
        "launcher events" => {
            w.sleeper("web");
            w.sleeper("db");
            let out = w.run(line);
            let table = out.ok();
            assert!(table.contains("pod/web") && table.contains("pod/db"), "{table}");
        }

        // ---- launcher top --help
        "launcher top" => {
            w.sleeper("web");
            w.sleeper("db");
            let out = w.run(line);
            let table = out.ok();
            assert!(table.starts_with("NAME ") && table.contains("CPU(cores)"), "{table}");
            assert!(row(table, "web").is_some() && row(table, "db").is_some(), "{table}");
        }
        "launcher top web --containers" => {
            w.up("web", &["-c", "web=sleep 3600", "-c", "sidecar=sleep 3600"]);
            let out = w.run(line);
            let table = out.ok();
            for c in ["web", "sidecar"] {
                let found = table.lines().any(|l| l.split_whitespace().take(2).eq(["web", c]));
                assert!(found, "no row for container {c}:\n{table}");
            }
        }
        "launcher top web --window 5s" => {
            // A container busy for the whole window: about one core.
            w.up("web", &["-c", "web=sh -c 'while :; do :; done'"]);
            let start = Instant::now();
            let out = w.run(line);
            assert!(start.elapsed() >= Duration::from_secs(5), "the window was not 5 s");
            let web = row(out.ok(), "web").map(|r| r[1].to_string()).expect("web's row");
            let milli: u64 = web.trim_end_matches('m').parse().expect("millicores");
            assert!(milli > 300, "{web} for a busy loop over 5 s");
        }

        // ---- launcher volume --help
        "launcher volume ls" => {
            w.up_yaml(&claim_pod("web", "data"));
            let out = w.run(line);
            assert_eq!(row(out.ok(), "data"), Some(vec!["data", "web"]), "{out:?}");
        }
        "launcher volume rm data" => {
            w.up_yaml(&claim_pod("web", "data"));
            w.pods.ok(&["exec", "web", "--", "sh", "-c", "echo kept > /data/file"]);
            w.pods.ok(&["down", "web", "--grace-period", "0"]);
            // Kept after the pod ...
            let kept = w.pods.data.path().join("volumes/data/file");
            assert_eq!(std::fs::read_to_string(&kept).expect("the volume's file"), "kept\n");
            // ... until removed.
            w.run(line).ok();
            assert!(!kept.exists());
            assert!(!w.pods.ok(&["volume", "ls"]).contains("data"));
        }

        // ---- launcher wait --help
        "launcher wait web --for=condition=Ready --timeout=60s" => {
            w.up_yaml("apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: busybox
    command: [sh, -c, 'sleep 1; touch /tmp/ready; exec sleep 3600']
    readinessProbe:
      exec: {command: [test, -e, /tmp/ready]}
      periodSeconds: 1
");
            assert_eq!(w.run(line).ok(), "pod/web condition met\n");
            let pod = w.pods.status("web");
            assert_eq!(pod_tests::condition(&pod, "Ready"), "True");
        }
        "launcher wait job --for=jsonpath='{.status.phase}'=Succeeded" => {
            w.up("job", &["--restart", "Never", "-c", "job=sleep 1"]);
            assert_eq!(w.run(line).ok(), "pod/job condition met\n");
            assert_eq!(w.phase("job"), "Succeeded");
        }
        "launcher wait web --for=delete" => {
            w.sleeper("web");
            let mut wait = w.start(line);
            std::thread::sleep(Duration::from_millis(300));
            assert!(wait.still_running(), "wait ended before the pod went");
            w.pods.ok(&["down", "web"]);
            let out = wait.wait();
            assert_eq!(out.ok(), "pod/web condition met\n");
        }
        "launcher wait web --for=create --timeout=10s" => {
            let mut wait = w.start(line);
            std::thread::sleep(Duration::from_millis(300));
            assert!(wait.still_running(), "wait ended before the pod came");
            w.sleeper("web");
            let out = wait.wait();
            assert_eq!(out.ok(), "pod/web condition met\n");
        }

        // ---- launcher completion --help: written where the line says, in a mount
        // namespace whose /etc/bash_completion.d and /usr/local/share are the test's.
        "launcher completion bash > /etc/bash_completion.d/launcher" => {
            completion(w, line, "bash -c 'source /etc/bash_completion.d/launcher && complete -p launcher'");
        }
        "source <(launcher completion bash)" => completion(w, line, "complete -p launcher"),
        "launcher completion zsh > /usr/local/share/zsh/site-functions/_launcher" => {
            completion(w, line, "head -1 /usr/local/share/zsh/site-functions/_launcher");
        }
        "launcher completion fish > ~/.config/fish/completions/launcher.fish" => {
            completion(w, line, "grep -c 'complete .*--command launcher' ~/.config/fish/completions/launcher.fish");
        }

        _ => panic!("an example no scenario knows (add one to tests/examples.rs): {line}"),
    }
}

fn claim_pod(pod: &str, claim: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  containers:
  - name: {pod}
    image: busybox
    command: [sleep, '3600']
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"
    )
}

/// A completion example, then `check` in the same shell; the check's output shows the
/// script registered or written.
fn completion(w: &World, line: &str, check: &str) {
    let script = format!(
        "mount -t tmpfs example /etc/bash_completion.d && mount -t tmpfs example /usr/local/share && \
         mkdir -p /usr/local/share/zsh/site-functions ~/.config/fish/completions && {line} && {check}"
    );
    let quoted = script.replace('\'', "'\\''");
    let out = w.run(&format!(
        "unshare --mount --propagation private bash -c '{quoted}'"
    ));
    let shown = out.ok();
    let expected = match line {
        l if l.contains("zsh") => "#compdef launcher",
        l if l.contains("fish") => "1",
        _ => "launcher",
    };
    assert!(shown.contains(expected), "{line}: {out:?}");
}

/// Runs every example of `page` in a world of its own; those that set limits only
/// where `limits` (the VM tier).
fn page(page: &str, limits: bool) {
    let examples = help_examples(page);
    assert!(
        !examples.is_empty(),
        "launcher {page} --help has no examples"
    );
    for (n, line) in examples.iter().enumerate() {
        if needs_controllers(line) != limits {
            continue;
        }
        let tag = format!("ex-{}{n}", page.replace(' ', "-"));
        let world = World::new(&tag);
        eprintln!("example: {line}");
        example(&world, line);
    }
}

#[test]
fn examples_of_launcher_help() {
    page("", false);
}

#[test]
fn examples_of_up() {
    page("up", false);
}

#[test]
fn examples_of_down() {
    page("down", false);
}

#[test]
fn examples_of_ps() {
    page("ps", false);
}

#[test]
fn examples_of_exec() {
    page("exec", false);
}

#[test]
fn examples_of_attach() {
    page("attach", false);
}

#[test]
fn examples_of_logs() {
    page("logs", false);
}

#[test]
fn examples_of_events() {
    page("events", false);
}

#[test]
fn examples_of_top() {
    page("top", false);
}

#[test]
fn examples_of_volume() {
    page("volume", false);
}

#[test]
fn examples_of_wait() {
    page("wait", false);
}

#[test]
fn examples_of_completion() {
    page("completion", false);
}

#[test]
#[ignore = "sets memory and CPU limits: needs those controllers (VM tier)"]
fn examples_that_set_limits() {
    let memory = cgroup2_mount().join("cgroup.controllers");
    let controllers = std::fs::read_to_string(memory).unwrap_or_default();
    assert!(
        controllers.contains("memory") && controllers.contains("cpu"),
        "{controllers}"
    );
    let mut ran = 0;
    for p in PAGES {
        ran += help_examples(p)
            .iter()
            .filter(|l| needs_controllers(l))
            .count();
        page(p, true);
    }
    assert!(
        ran > 0,
        "no example sets limits: this test has nothing to run"
    );
}

/// Every page with examples is run by one of the tests above.
#[test]
fn every_help_page_with_examples_is_run() {
    let help = launcher_help("");
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"up"), "{help}");
    for c in commands {
        if !help_examples(c).is_empty() {
            assert!(
                PAGES.contains(&c),
                "launcher {c} --help has examples no test runs"
            );
        }
    }
}

/// The README's shell blocks, each a session: its lines in order in one world, each
/// checked. `make` lines are the build's (tests/install.rs runs what make install runs).
#[test]
fn the_readmes_shell_blocks_run_in_order() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l == "```sh" {
            inside = true;
            blocks.push(Vec::new());
        } else if l.starts_with("```") {
            inside = false;
        } else if inside {
            blocks.last_mut().expect("a block").push(l.to_string());
        }
    }
    // A block that names its runner (a recipe for podman, run under crun in the VM) is
    // that test's.
    blocks.retain(|b| !b.first().is_some_and(|l| l.starts_with("# run by tests/")));
    let mut ran = 0;
    for (n, block) in blocks.iter().enumerate() {
        let world = World::new(&format!("readme{n}"));
        for line in block.iter().filter(|l| !l.starts_with("make ")) {
            eprintln!("README: {line}");
            readme_line(&world, line);
            ran += 1;
        }
    }
    assert!(ran >= 8, "only {ran} README lines ran");
}

fn readme_line(w: &World, line: &str) {
    // The README names the default state root; the test's world has its own.
    let root = w.pods.root.path().display().to_string();
    let typed = line.replace("/run/launcher", &root);
    // The command, without the comment after it.
    match line.split(" #").next().unwrap_or(line).trim_end() {
        "launcher up --name hello --restart Never -c hello='echo hello from a pod'" => {
            example(w, line)
        }
        "launcher up -d --name clock -c clock='sh -c \"while date; do sleep 5; done\"'" => {
            assert_eq!(w.run(line).ok(), "clock\n");
            assert_eq!(w.phase("clock"), "Running");
        }
        "launcher ps" => {
            let out = w.run(line);
            assert!(
                out.ok()
                    .starts_with("NAME    READY   STATUS    RESTARTS   AGE\n"),
                "{out:?}"
            );
            assert!(
                row(out.ok(), "clock").is_some_and(|r| r[2] == "Running"),
                "{out:?}"
            );
        }
        "launcher exec clock -- ps" => pause_is_pid_1(w.run(line).ok()),
        "launcher logs clock" => {
            w.logged("clock", "clock", "UTC");
            assert!(w.run(line).ok().contains(" UTC "));
        }
        "launcher down clock" => {
            assert_eq!(w.run(line).ok(), "pod \"clock\" deleted\n");
            w.pods.assert_clean();
        }
        "launcher up -d --name web -c 'web=busybox httpd -f -p 8080 -h /etc' -p 9090:8080" => {
            assert_eq!(w.run(line).ok(), "web\n");
        }
        "curl http://127.0.0.1:9090/hostname" => {
            let out = w.run(&format!(
                "curl -sf --retry 20 --retry-delay 0 --retry-all-errors {}",
                &line[5..]
            ));
            assert_eq!(out.ok(), "web\n");
            assert_eq!(w.run(line).ok(), "web\n");
        }
        "launcher ps -o wide" => {
            let out = w.run(line);
            let web = row(out.ok(), "web").expect("web's row");
            assert!(web.iter().any(|c| c.starts_with("10.")), "{out:?}");
        }
        "nsenter --net=/run/launcher/.netns/web ip addr" => {
            let out = w.run(&typed);
            let ip = w.pods.status("web")["status"]["podIP"]
                .as_str()
                .map(str::to_string);
            let ip = ip.expect("the pod's IP");
            assert!(out.ok().contains(&format!("inet {ip}/")), "{out:?}");
        }
        _ => panic!("a README line no scenario knows (add one to tests/examples.rs): {line}"),
    }
}
