//! Shell completion as a user meets it: a real bash in a tmux of the test's own,
//! `source <(launcher completion bash)`, keys typed and TAB pressed, the screen read.
//! Names come from the live state: the pods the test started, their containers, the
//! named volume one of them made.

use pod_tests::{bin_dir, wait_for, Pods, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A bash in a detached tmux session on a socket of the test's own; killed on drop.
struct Shell {
    dir: TempDir,
}

impl Shell {
    fn new(pods: &Pods) -> Shell {
        let dir = TempDir::new("tmux");
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir().display());
        let shell = Shell { dir };
        shell
            .tmux(&["new-session", "-d", "-x", "160", "-y", "50", "--"])
            .arg("env")
            .arg("-i")
            .arg(format!("PATH={path}"))
            .arg(format!("HOME={}", shell.dir.path().display()))
            .arg("TERM=xterm")
            .arg("PS1=$ ")
            .arg(format!("LAUNCHER_ROOT={}", pods.root.path().display()))
            .arg(format!("LAUNCHER_DATA_ROOT={}", pods.data.path().display()))
            .args(["bash", "--norc", "--noprofile"])
            .status()
            .expect("tmux")
            .success()
            .then_some(())
            .expect("tmux new-session");
        // One TAB lists the candidates when there are several (as a second TAB would,
        // but only after a first that changed nothing).
        shell.line("bind 'set show-all-if-ambiguous on'");
        shell.line("source <(launcher completion bash) && echo registered");
        shell.until("registered\n$");
        shell
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("socket")
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(self.socket())
            .args(["-f", "/dev/null"])
            .args(args);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self.tmux(&["send-keys", "-t", "0"]).args(keys).status();
        assert!(ok.is_ok_and(|s| s.success()), "send-keys {keys:?}");
    }

    /// Types `text` literally, no Enter.
    fn type_(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    fn line(&self, text: &str) {
        self.type_(text);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "0"]).output();
        let out = out.expect("capture-pane");
        // Trailing blanks of each row and the empty rows below the prompt.
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<&str> = text.lines().map(str::trim_end).collect();
        rows.join("\n").trim_end().to_string() + "\n"
    }

    /// Waits until the screen contains `text`; returns the screen.
    fn until(&self, text: &str) -> String {
        let mut screen = String::new();
        wait_for(
            &format!("{text:?} on the screen"),
            Duration::from_secs(10),
            || {
                screen = self.screen();
                screen.contains(text)
            },
        );
        screen
    }

    /// Types `text`, presses TAB (which lists the candidates when there are several),
    /// then a marker, and returns the screen once the marker shows: bash handles keys in
    /// order, so the completion is on the screen by then. The line is cleared and the
    /// screen too.
    fn complete(&self, text: &str) -> String {
        self.type_(text);
        self.keys(&["Tab"]);
        self.type_("#END");
        let screen = self.until("#END");
        self.keys(&["C-u", "C-l"]);
        self.tmux(&["clear-history", "-t", "0"]).status().ok();
        wait_for("a cleared screen", Duration::from_secs(10), || {
            self.screen() == "$\n"
        });
        screen
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}

/// The words of the screen, for "is this candidate listed".
fn words(screen: &str) -> Vec<&str> {
    screen.split_whitespace().collect()
}

fn has_tmux() -> bool {
    Path::new("/usr/bin/tmux").exists()
}

#[test]
fn tab_completes_commands_pods_containers_and_volumes_from_the_live_state() {
    assert!(has_tmux(), "tmux is missing: make deps installs it");
    let pods = Pods::new("complete");
    pods.up_detached(
        "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - {name: server, image: x, command: [sleep, '300']}
  - {name: sidecar, image: x, command: [sleep, '300']}
",
        &[],
    );
    pods.up_detached(
        "apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers:
  - name: db
    image: x
    command: [sleep, '300']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: dbdata}
",
        &[],
    );
    let shell = Shell::new(&pods);

    // Commands: the visible ones; never the hidden supervise and man.
    let screen = shell.complete("launcher ");
    for c in ["up", "down", "ps", "logs", "describe", "completion"] {
        assert!(words(&screen).contains(&c), "{c} not offered:\n{screen}");
    }
    for hidden in ["supervise", "man"] {
        assert!(
            !words(&screen).contains(&hidden),
            "{hidden} offered:\n{screen}"
        );
    }
    // A single candidate is completed in place; a hidden one is not, by its prefix either.
    let screen = shell.complete("launcher desc");
    assert!(screen.contains("$ launcher describe #END"), "{screen}");
    let screen = shell.complete("launcher ma");
    assert!(screen.contains("$ launcher ma#END"), "{screen}");

    // Pod names where a command takes a pod.
    let screen = shell.complete("launcher logs ");
    assert!(
        words(&screen).contains(&"web") && words(&screen).contains(&"db"),
        "{screen}"
    );
    let screen = shell.complete("launcher down w");
    assert!(screen.contains("$ launcher down web #END"), "{screen}");
    let screen = shell.complete("launcher events --for pod/d");
    assert!(
        screen.contains("$ launcher events --for pod/db #END"),
        "{screen}"
    );

    // The named pod's containers for -c, and as logs' second word; not another pod's.
    let screen = shell.complete("launcher logs web -c ");
    let w = words(&screen);
    assert!(w.contains(&"server") && w.contains(&"sidecar"), "{screen}");
    assert!(!w.contains(&"db"), "{screen}");
    let screen = shell.complete("launcher exec db -c ");
    assert!(screen.contains("$ launcher exec db -c db #END"), "{screen}");
    let screen = shell.complete("launcher logs web si");
    assert!(
        screen.contains("$ launcher logs web sidecar #END"),
        "{screen}"
    );

    // Named volumes for volume rm.
    let screen = shell.complete("launcher volume rm ");
    assert!(
        screen.contains("$ launcher volume rm dbdata #END"),
        "{screen}"
    );

    // No file names where a value is not a file (up -c NAME=COMMAND).
    std::fs::write(shell.dir.path().join("afile"), "").expect("a file");
    shell.line(&format!("cd {}", shell.dir.path().display()));
    shell.keys(&["C-l"]);
    let screen = shell.complete("launcher up -c a");
    assert!(screen.contains("$ launcher up -c a#END"), "{screen}");

    pods.ok(&["down", "web", "db", "--grace-period", "0"]);
    pods.ok(&["volume", "rm", "dbdata"]);
    // Gone pods are gone from completion.
    let screen = shell.complete("launcher logs ");
    assert!(!words(&screen).contains(&"web"), "{screen}");
    drop(shell);
    pods.assert_clean();
}
