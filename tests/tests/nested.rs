//! The launcher inside a container, the way CI jobs run it: crun starts a container
//! with its own cgroup, mount and PID namespaces, whose entrypoint is a shell that
//! runs the launcher. Privileged (cgroup2 mounted read-write, every capability, every
//! device), as `docker run --privileged` on a cgroup v2 host gives: pods with limits
//! start, the limits bite, and `down` leaves nothing but the `init` leaf the
//! launcher moved the container's own processes to. Not privileged (cgroup2 read-only):
//! a limit is refused in one line and nothing is left, and a pod without limits runs
//! without a cgroup of its own and is taken down whole. crun refuses this host's
//! v1/v2 hybrid cgroups, so these run in the VM tier.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Every capability up to CAP_CHECKPOINT_RESTORE (Linux 5.9), as --privileged grants.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A crun container that runs `script` with the host's programs (bound read-only),
/// `/out` bound read-write to a directory of the test, and cgroup2 mounted read-write
/// or read-only. Deleted (killed first if need be) on drop, before its directory.
struct Container {
    ctr: CrunContainer,
    tmp: TempDir,
}

impl Container {
    fn new(tag: &str, script: &str, cgroup_rw: bool) -> Container {
        Container::with(tag, script, cgroup_rw, None)
    }

    /// The README's CI recipe: the image's /usr/local/bin holds the binaries under
    /// test (its Containerfile's COPY), its PATH is a Debian image's, and with
    /// `network_none` the container has a network namespace of its own, empty.
    fn recipe(tag: &str, script: &str, network_none: bool) -> Container {
        Container::with(tag, script, true, Some(network_none))
    }

    fn with(tag: &str, script: &str, cgroup_rw: bool, recipe: Option<bool>) -> Container {
        let tmp = TempDir::new(&format!("nested-{tag}"));
        let bundle = tmp.path().join("bundle");
        fs::create_dir_all(bundle.join("rootfs")).unwrap();
        fs::create_dir(tmp.path().join("out")).unwrap();
        let bind_ro = |dir: &str| {
            json!({"destination": dir, "type": "bind", "source": dir,
                   "options": ["rbind", "ro"]})
        };
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "bind", "source": "/dev",
                   "options": ["rbind", "rw"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "rw"]}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev",
                               if cgroup_rw { "rw" } else { "ro" }]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}),
            json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs"}),
            json!({"destination": "/out", "type": "bind",
                   "source": tmp.path().join("out"), "options": ["rbind", "rw"]}),
        ];
        for dir in ["/bin", "/usr", "/lib", "/lib64", "/etc", "/opt"] {
            if Path::new(dir).exists() {
                mounts.push(bind_ro(dir));
            }
        }
        let mut env = vec!["PATH=/bin:/usr/bin", "LAUNCHER_NETWORK=none"];
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "mount"}),
            json!({"type": "cgroup"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
        ];
        if let Some(network_none) = recipe {
            mounts.push(json!({"destination": "/usr/local/bin", "type": "bind",
                               "source": bin_dir(), "options": ["rbind", "ro"]}));
            // An image's /etc is its own to write: the launcher writes its default
            // network's configuration there.
            mounts.push(json!({"destination": "/etc/cni", "type": "tmpfs", "source": "tmpfs"}));
            env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
            if network_none {
                namespaces.push(json!({"type": "network"}));
            }
        }
        let id = format!("nested-{tag}-{}", std::process::id());
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sh", "-c", script],
                // These tests are about cgroups; the VM's containers have no network.
                "env": env,
                "cwd": "/out",
                "capabilities": {
                    "bounding": ALL_CAPS, "effective": ALL_CAPS, "permitted": ALL_CAPS,
                },
                "noNewPrivileges": false,
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "ci-job",
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "cgroupsPath": format!("/{id}"),
                "resources": {"devices": [{"allow": true, "access": "rwm"}]},
            },
        });
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let ctr = CrunContainer {
            root: tmp.path().join("state"),
            id,
        };
        Container { ctr, tmp }
    }

    /// Runs the container to its end; returns crun's exit status and stderr.
    fn run(&self) -> (Option<i32>, String) {
        let mut cmd = self.ctr.crun();
        cmd.args(["run", "--bundle"])
            .arg(self.tmp.path().join("bundle"))
            .arg(&self.ctr.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut p = Proc::spawn(&mut cmd);
        let st = p.wait_timeout(scaled(Duration::from_secs(120)));
        let mut err = String::new();
        std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (st.code(), err)
    }

    fn out(&self, file: &str) -> String {
        let path: PathBuf = self.tmp.path().join("out").join(file);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Processes left in the container's PID namespace but its shell (PID 1), from
/// /proc/N/stat lines the shell wrote; zombies count as gone.
fn others_than_the_shell(stat_lines: &str) -> Vec<String> {
    stat_lines
        .lines()
        .filter(|l| {
            let state = l.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
            !l.starts_with("1 ") && state != Some("Z")
        })
        .map(str::to_string)
        .collect()
}

const PRIVILEGED: &str = r#"
L=/opt/pod/bin/launcher
$L up -d --name mem --memory 32Mi --restart Never \
    -c 'hog=dd if=/dev/zero of=/dev/null bs=64M count=1' -c 'idle=sleep 600' \
    >up-mem.out 2>up-mem.err; echo $? >up-mem.rc
# A second pod, started while the first runs.
$L up -d --name bomb --pids 20 \
    -c "bomb=sh -c 'i=0; while [ \$i -lt 200 ]; do sleep 600 & i=\$((i+1)); done; wait'" \
    >up-bomb.out 2>up-bomb.err; echo $? >up-bomb.rc
cat /proc/self/cgroup >self-cgroup
$L wait mem --timeout 60s \
    --for=jsonpath='{.status.containerStatuses[0].state.terminated.reason}'=OOMKilled \
    >wait-mem.out 2>&1; echo $? >wait-mem.rc
$L status mem -o json >mem.json
count() { sed -n 's/^max //p' "$1"; }
i=0
while [ $i -lt 300 ]; do
    m=$(( $(count /sys/fs/cgroup/launcher/bomb/pids.events) + $(count /sys/fs/cgroup/launcher/bomb/bomb/pids.events) ))
    [ "$m" -gt 0 ] && break
    sleep 0.1; i=$((i+1))
done
echo "$m" >bomb-max
cat /sys/fs/cgroup/launcher/bomb/pids.current >bomb-current
$L down mem >/dev/null 2>down.err && $L down bomb --grace-period 1s >/dev/null 2>>down.err
echo $? >down.rc
find /sys/fs/cgroup -mindepth 1 -type d | sort >cgroups-after
ls -A /run/launcher >state-after
for p in /proc/[0-9]*; do read -r line <$p/stat && echo "$line"; done >procs-after
grep -c ' /run/launcher' /proc/self/mountinfo >mounts-after
exit 0
"#;

#[test]
#[ignore = "needs a pure cgroup2 host (crun refuses v1/v2 hybrid): VM tier"]
fn in_a_privileged_container_pods_get_their_limits_and_leave_only_the_init_leaf() {
    let ctr = Container::new("priv", PRIVILEGED, true);
    let (code, err) = ctr.run();
    assert_eq!(code, Some(0), "crun: {err}");

    assert_eq!(
        ctr.out("up-mem.rc").trim(),
        "0",
        "{}",
        ctr.out("up-mem.err")
    );
    let said = ctr.out("up-mem.err");
    assert_eq!(said.lines().count(), 1, "said once, in one line: {said}");
    assert!(
        said.starts_with("launcher: moved 2 processes (1, ")
            && said.contains(
                " from /sys/fs/cgroup, the root of this cgroup namespace, to /sys/fs/cgroup/init"
            ),
        "{said}"
    );
    assert_eq!(
        ctr.out("up-bomb.rc").trim(),
        "0",
        "{}",
        ctr.out("up-bomb.err")
    );
    assert_eq!(ctr.out("up-bomb.err"), "", "the move is done once");
    assert_eq!(
        ctr.out("self-cgroup"),
        "0::/init\n",
        "the container's shell moved to the init leaf"
    );

    // The memory limit bites: the hog is OOM killed, its neighbour runs on.
    assert_eq!(
        ctr.out("wait-mem.rc").trim(),
        "0",
        "{}",
        ctr.out("wait-mem.out")
    );
    let mem: Value = serde_json::from_str(&ctr.out("mem.json")).unwrap();
    let statuses = mem["status"]["containerStatuses"].as_array().unwrap();
    assert_eq!(statuses[0]["state"]["terminated"]["reason"], "OOMKilled");
    assert!(statuses[1]["state"]["running"].is_object(), "{mem}");
    // The pids limit holds the fork bomb.
    assert!(ctr.out("bomb-max").trim().parse::<u64>().unwrap() > 0);
    assert!(ctr.out("bomb-current").trim().parse::<u64>().unwrap() <= 20);

    assert_eq!(ctr.out("down.rc").trim(), "0", "{}", ctr.out("down.err"));
    assert_eq!(
        ctr.out("cgroups-after"),
        "/sys/fs/cgroup/init\n/sys/fs/cgroup/launcher\n",
        "nothing but the init leaf and the (empty) parent"
    );
    assert_eq!(ctr.out("state-after"), "");
    assert_eq!(
        others_than_the_shell(&ctr.out("procs-after")),
        Vec::<String>::new()
    );
    assert_eq!(ctr.out("mounts-after").trim(), "0");
}

const NOT_PRIVILEGED: &str = r#"
L=/opt/pod/bin/launcher
$L up -d --name lim --memory 32Mi -c 'a=sleep 600' >lim.out 2>lim.err; echo $? >lim.rc
# Without limits the pod runs, held together by its PID namespace alone.
$L up -d --name free -c 'a=sleep 600' -c "b=sh -c 'sleep 500 & exec sleep 400'" \
    >free.out 2>free.err; echo $? >free.rc
$L wait free --for=condition=Ready --timeout 30s >/dev/null 2>&1; echo $? >free-ready.rc
$L exec free -c a -- cat /proc/1/comm >free-pid1 2>&1
$L ps -o wide >free-ps
$L down free >/dev/null 2>down.err; echo $? >down.rc
ls -A /run/launcher 2>/dev/null >state-after
find /sys/fs/cgroup -mindepth 1 -type d >cgroups-after
for p in /proc/[0-9]*; do read -r line <$p/stat && echo "$line"; done >procs-after
exit 0
"#;

#[test]
#[ignore = "needs a pure cgroup2 host (crun refuses v1/v2 hybrid): VM tier"]
fn in_a_container_with_a_read_only_cgroup2_a_limit_is_refused_and_a_pod_without_runs() {
    let ctr = Container::new("ro", NOT_PRIVILEGED, false);
    let (code, err) = ctr.run();
    assert_eq!(code, Some(0), "crun: {err}");
    assert_eq!(ctr.out("lim.rc").trim(), "1");
    assert_eq!(ctr.out("lim.out"), "");
    assert_eq!(
        ctr.out("lim.err"),
        "launcher: cannot set the pod's limits: the cgroup2 file system at /sys/fs/cgroup is \
         read-only here, as in a container started without --privileged. Hint: run this \
         container with --privileged (a writable cgroup2 in its own cgroup namespace), or \
         start the pod without --memory, --cpu, --cpu-request and --pids\n"
    );

    assert_eq!(ctr.out("free.rc").trim(), "0", "{}", ctr.out("free.err"));
    assert_eq!(ctr.out("free.out"), "free\n");
    assert_eq!(
        ctr.out("free.err"),
        "launcher: warning: pod free runs without a cgroup of its own: the cgroup2 file \
         system at /sys/fs/cgroup is read-only here, as in a container started without \
         --privileged (run it with --privileged for limits, and for a cgroup that ends \
         whatever a container leaves behind)\n"
    );
    assert_eq!(ctr.out("free-ready.rc").trim(), "0");
    assert_eq!(ctr.out("free-pid1"), "pause\n", "exec runs in the pod");
    let ps = ctr.out("free-ps");
    let row = ps.lines().nth(1).unwrap();
    assert!(
        row.starts_with("free ") && row.contains(" 2/2 ") && row.ends_with(" -"),
        "{ps}"
    );
    assert_eq!(ctr.out("down.rc").trim(), "0", "{}", ctr.out("down.err"));
    assert_eq!(ctr.out("state-after"), "");
    assert_eq!(ctr.out("cgroups-after"), "");
    assert_eq!(
        others_than_the_shell(&ctr.out("procs-after")),
        Vec::<String>::new()
    );
}

/// The README's recipe block for CI containers: its `podman run` and `docker run` lines.
fn recipe_lines() -> Vec<String> {
    let path = std::env::var_os("POD_README")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let readme = fs::read_to_string(path).unwrap();
    let block: Vec<String> = (readme.split("```sh\n"))
        .find(|b| b.starts_with("# run by tests/tests/nested.rs"))
        .expect("the README's CI recipe")
        .split("```")
        .next()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let runs: Vec<String> = (block.into_iter())
        .filter(|l| l.starts_with("podman run") || l.starts_with("docker run"))
        .collect();
    assert_eq!(runs.len(), 2, "a podman and a docker line: {runs:?}");
    runs
}

#[test]
#[ignore = "needs a pure cgroup2 host (crun refuses v1/v2 hybrid): VM tier"]
fn the_readmes_ci_recipe_runs_its_pod_in_a_privileged_container() {
    for (n, line) in recipe_lines().iter().enumerate() {
        // The flags are those this container is made with: --privileged (every
        // capability and device, cgroup2 writable), --cgroupns=private, --network none.
        let (flags, command) = line
            .split_once(" ci-pods ")
            .unwrap_or_else(|| panic!("no image in {line}"));
        let flags: Vec<&str> = flags.split_whitespace().skip(2).collect();
        assert_eq!(
            flags,
            [
                "--rm",
                "--privileged",
                "--cgroupns=private",
                "--network",
                "none"
            ],
            "{line}"
        );
        let script = format!("{command} >recipe.out 2>recipe.err; echo $? >recipe.rc");
        let ctr = Container::recipe(&format!("recipe{n}"), &script, true);
        let (code, err) = ctr.run();
        assert_eq!(code, Some(0), "crun: {err}");
        assert_eq!(
            ctr.out("recipe.rc").trim(),
            "0",
            "{}",
            ctr.out("recipe.err")
        );
        assert_eq!(ctr.out("recipe.out"), "[test] hello from a pod in CI\n");
    }
}
