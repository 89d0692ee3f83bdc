//! Shell completion as a user meets it: a real bash in a tmux of the test's own,
//! `source <(launcher completion bash)`, keys typed and TAB pressed, the screen read.
//! Names come from the live state: the pods the test started, their containers, the
//! named volume one of them made.

use pod_tests::{Pods, Tmux};
use std::path::Path;

/// Types `text`, presses TAB (which lists the candidates when there are several), then
/// a marker, and returns the screen once the marker shows: bash handles keys in order,
/// so the completion is on the screen by then. The line and the screen are cleared.
fn complete(shell: &Tmux, text: &str) -> String {
    shell.type_(text);
    shell.keys(&["Tab"]);
    shell.type_("#END");
    let screen = shell.until("#END");
    shell.clear();
    screen
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
    let shell = Tmux::bash(&pods);
    // One TAB lists the candidates when there are several (as a second TAB would, but
    // only after a first that changed nothing).
    shell.line("bind 'set show-all-if-ambiguous on'");
    shell.line("source <(launcher completion bash) && echo registered");
    shell.until("registered\n$");
    shell.clear();

    // Commands: the visible ones; never the hidden supervise and man.
    let screen = complete(&shell, "launcher ");
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
    let screen = complete(&shell, "launcher desc");
    assert!(screen.contains("$ launcher describe #END"), "{screen}");
    let screen = complete(&shell, "launcher ma");
    assert!(screen.contains("$ launcher ma#END"), "{screen}");

    // Pod names where a command takes a pod.
    let screen = complete(&shell, "launcher logs ");
    assert!(
        words(&screen).contains(&"web") && words(&screen).contains(&"db"),
        "{screen}"
    );
    let screen = complete(&shell, "launcher down w");
    assert!(screen.contains("$ launcher down web #END"), "{screen}");
    let screen = complete(&shell, "launcher events --for pod/d");
    assert!(
        screen.contains("$ launcher events --for pod/db #END"),
        "{screen}"
    );

    // The named pod's containers for -c, and as logs' second word; not another pod's.
    let screen = complete(&shell, "launcher logs web -c ");
    let w = words(&screen);
    assert!(w.contains(&"server") && w.contains(&"sidecar"), "{screen}");
    assert!(!w.contains(&"db"), "{screen}");
    let screen = complete(&shell, "launcher exec db -c ");
    assert!(screen.contains("$ launcher exec db -c db #END"), "{screen}");
    let screen = complete(&shell, "launcher logs web si");
    assert!(
        screen.contains("$ launcher logs web sidecar #END"),
        "{screen}"
    );

    // Named volumes for volume rm.
    let screen = complete(&shell, "launcher volume rm ");
    assert!(
        screen.contains("$ launcher volume rm dbdata #END"),
        "{screen}"
    );

    // No file names where a value is not a file (up -c NAME=COMMAND).
    std::fs::write(shell.dir.path().join("afile"), "").expect("a file");
    shell.line(&format!("cd {}", shell.dir.path().display()));
    shell.clear();
    let screen = complete(&shell, "launcher up -c a");
    assert!(screen.contains("$ launcher up -c a#END"), "{screen}");

    pods.ok(&["down", "web", "db", "--grace-period", "0"]);
    pods.ok(&["volume", "rm", "dbdata"]);
    // Gone pods are gone from completion.
    let screen = complete(&shell, "launcher logs ");
    assert!(!words(&screen).contains(&"web"), "{screen}");
    drop(shell);
    pods.assert_clean();
}
