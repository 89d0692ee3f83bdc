//! `launcher top`: CPU and memory use read from the pods' cgroups, as `kubectl top
//! pod` shows them. The figures need the memory controller: the VM tier.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

/// The rows of `top`'s table under its header, split into columns.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn milli(cell: &str) -> u64 {
    cell.strip_suffix('m').unwrap().parse().unwrap()
}

fn mebi(cell: &str) -> u64 {
    cell.strip_suffix("Mi").unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn top_shows_a_busy_loop_under_its_cpu_limit_and_a_known_allocation() {
    let pods = Pods::new("top");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "busy",
        "--cpu",
        "250m",
        "-c",
        "spin=sh -c 'while :; do :; done'",
        "-c",
        "fill=sh -c 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null; sleep 600'",
    ]);
    pods.ok(&["up", "-d", "--name", "idle", "-c", "a=sleep 600"]);
    // The 48 MiB in the pod's /dev/shm are charged to the container that wrote them.
    let mut rows = Vec::new();
    wait_for("fill's 48 MiB", Duration::from_secs(20), || {
        rows = table(&pods.ok(&["top", "busy", "--containers", "--window", "2s"]));
        rows.iter().any(|r| r[1] == "fill" && mebi(&r[3]) >= 48)
    });
    let out = pods.ok(&["top", "busy", "--containers", "--window", "2s"]);
    assert!(out.starts_with("POD "), "{out}");
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    );
    let rows = table(&out);
    let spin = rows.iter().find(|r| r[1] == "spin").unwrap();
    let fill = rows.iter().find(|r| r[1] == "fill").unwrap();
    // cpu.max of the pod is 25000/100000: a quarter of a core, whatever the loop wants.
    let cpu = milli(&spin[2]);
    assert!(
        (150..=320).contains(&cpu),
        "spin uses {cpu}m under --cpu 250m"
    );
    assert!(
        (48..=60).contains(&mebi(&fill[3])),
        "fill holds {}",
        fill[3]
    );
    assert!(milli(&fill[2]) < 50, "{out}");
    // Every pod, one line each, summing its containers.
    let all = table(&pods.ok(&["top"]));
    let busy = all.iter().find(|r| r[0] == "busy").unwrap();
    let idle = all.iter().find(|r| r[0] == "idle").unwrap();
    assert!(milli(&busy[1]) >= 150 && mebi(&busy[2]) >= 48, "{all:?}");
    assert!(milli(&idle[1]) < 50, "{all:?}");
    pods.ok(&["down", "busy", "--grace-period", "0"]);
    pods.ok(&["down", "idle", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn top_says_what_it_cannot_show_in_one_line() {
    let pods = Pods::new("topbad");
    // An unknown pod, a bad window.
    for (args, code, needle) in [
        (&["top", "nope"][..], 1, "pod \"nope\" not found"),
        (&["top", "--window", "soon"], 2, "--window \"soon\""),
        (&["top", "--window", "0s"], 2, "--window \"0s\""),
        (&["top", "--bogus"], 2, "unexpected argument '--bogus'"),
    ] {
        let out = pods.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    pods.ok(&["up", "-d", "--name", "t", "-c", "a=sleep 600"]);
    let out = pods.run(&["top", "t"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let controllers =
        std::fs::read_to_string(cgroup2_mount().join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "memory") {
        assert!(out.status.success(), "{err}");
        let rows = table(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], "t");
    } else {
        // A cgroup2 without controllers (this host's): CPU still, memory <unknown>, and
        // one line saying why and how to get it.
        assert!(out.status.success(), "{err}");
        let rows = table(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], "t");
        assert!(rows[0][1].ends_with('m'), "{rows:?}");
        assert_eq!(rows[0][2], "<unknown>");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("has no memory controller") && err.contains("Delegate=yes"),
            "{err}"
        );
    }
    pods.ok(&["down", "t", "--grace-period", "0"]);
    let out = pods.run(&["top", "t"]);
    assert_eq!(out.status.code(), Some(1));
    pods.assert_clean();
}
