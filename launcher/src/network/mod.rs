//! A pod's network, on the CNI plugins every Kubernetes runtime uses (`cni`); the
//! default network's bridge with host-local addresses is built in (`bridge`, over
//! `netlink`) when its configuration is the one the launcher writes.
//!
//! `up` chooses the network and checks it before anything exists: the named
//! configuration list (written first if it is the default network and missing), every
//! plugin it needs, the ports (none published twice). What it settles goes into the
//! pod's record as an [`Attachment`], so that whoever takes the pod down can DEL it,
//! whatever else is lost.
//!
//! The sandbox then [`attach`]es pause's network namespace: pinned by a bind mount at
//! `<root>/.netns/<pod>` (DEL needs it after pause died), then ADD. [`detach`] is DEL
//! and the unpin, idempotent, one call at a time per pod (`network.lock` in the pod's
//! directory). `<root>/.netns` is a shared mount of its own while any pod is pinned
//! there: a mount namespace copied from the host (every pod's) detaches it in one
//! umount, and one the host's unmount propagates to keeps no netns alive.

mod bridge;
pub mod cni;
#[allow(unsafe_code)]
mod netlink;

use crate::spec::{Bandwidth, PodSpec, PortMapping};
use anyhow::Context;
use cni::{Call, CniError, NetworkList};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

/// The network a pod joins unless told otherwise, written on first use.
pub const DEFAULT_NETWORK: &str = "launcher";
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Debian's containernetworking-plugins, then the upstream release's place.
pub const DEFAULT_BIN_DIRS: &str = "/usr/lib/cni:/opt/cni/bin";
const DEFAULT_FILE: &str = "90-launcher.conflist";
/// The pod's interface, as every Kubernetes runtime names it.
pub const IFNAME: &str = "eth0";
/// A list's own key (libcni ignores it): the runtime masquerades the subnets of its
/// bridge's ranges, once for the network, rather than the bridge plugin per pod.
pub const MASQUERADE: &str = "launcherMasquerade";

/// The default network: a bridge of its own with host-local addresses on a subnet
/// clear of podman's (10.88.0.0/16) and docker's (172.17.0.0/16), then published
/// ports and traffic shaping. Masquerading out is one rule for the whole subnet,
/// set up by the runtime once per boot ([`MASQUERADE`]), not a chain per pod made
/// and removed by the bridge plugin (`ipMasq`: four iptables runs a pod).
pub fn default_list() -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": DEFAULT_NETWORK,
        MASQUERADE: true,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "launcher0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": "10.77.0.0/16", "gateway": "10.77.0.1"}]]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    })
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Cni(#[from] CniError),
    #[error("network {network:?} has no plugin with the {capability:?} capability, so {what}")]
    Capability {
        network: String,
        capability: &'static str,
        what: &'static str,
    },
    #[error("port {port} is already published by pod {pod:?}")]
    PortTaken { port: PortMapping, pod: String },
}

impl NetError {
    /// Bad input (exit 2) rather than a failure of the machine.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            NetError::Cni(CniError::Plugin { .. } | CniError::Write { .. })
        )
    }
}

/// What a pod's record keeps of its CNI network: enough to DEL it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    pub network: String,
    /// The configuration list as it was used (a later edit of the file does not
    /// change what DEL undoes).
    pub config: Value,
    pub executables: Vec<PathBuf>,
    pub container_id: String,
    pub args: String,
    pub capabilities: Map<String, Value>,
    /// How long each plugin may take (`--cni-timeout`), DEL's too.
    #[serde(default = "default_timeout")]
    pub timeout: std::time::Duration,
    /// ADD's final result, once there is one.
    #[serde(default)]
    pub result: Option<Value>,
}

/// How long a plugin may take unless `--cni-timeout` says otherwise: the kubelet's
/// `--runtime-request-timeout`, which bounds a sandbox's network setup.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn default_timeout() -> std::time::Duration {
    DEFAULT_TIMEOUT
}

/// Where the CNI configuration and plugins are looked for.
pub struct Dirs<'a> {
    /// How long each plugin may take.
    pub timeout: std::time::Duration,
    pub conf: &'a Path,
    pub bin: &'a [PathBuf],
}

/// The attachment `spec`'s pod will have, checked: None for a pod without a CNI
/// network. `others` are the ports other pods publish, with their pod's name.
pub fn plan(
    spec: &PodSpec,
    uid: &str,
    dirs: &Dirs,
    others: &[(String, PortMapping)],
) -> Result<Option<Attachment>, NetError> {
    for port in &spec.ports {
        if let Some((pod, _)) = others.iter().find(|(_, o)| o.collides(port)) {
            return Err(NetError::PortTaken {
                port: port.clone(),
                pod: pod.clone(),
            });
        }
    }
    let crate::spec::Network::Cni(name) = &spec.network else {
        return Ok(None);
    };
    let mut list = find_or_create(dirs.conf, name)?;
    let capabilities = capabilities(&spec.ports, &spec.bandwidth);
    if list.name == DEFAULT_NETWORK {
        list.config = for_pod(&list.config, &capabilities);
    }
    let executables = list.executables(dirs.bin)?;
    for (cap, what) in [
        ("portMappings", "ports cannot be published"),
        ("bandwidth", "the bandwidth annotations cannot be applied"),
    ] {
        let declared = list
            .plugins()
            .any(|p| p["capabilities"][cap].as_bool() == Some(true));
        if capabilities.contains_key(cap) && !declared {
            return Err(NetError::Capability {
                network: name.clone(),
                capability: cap,
                what,
            });
        }
    }
    let args = [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", "default"),
        ("K8S_POD_NAME", &spec.name),
        ("K8S_POD_INFRA_CONTAINER_ID", uid),
        ("K8S_POD_UID", uid),
    ]
    .map(|(k, v)| format!("{k}={v}"))
    .join(";");
    Ok(Some(Attachment {
        network: list.name,
        config: list.config,
        executables,
        container_id: uid.to_string(),
        args,
        capabilities,
        timeout: dirs.timeout,
        result: None,
    }))
}

/// The default network's list for one pod: what the CNI specification runs is every
/// plugin of a list, so a pod that publishes no port does without portmap (and its
/// iptables runs), one without the bandwidth annotations without bandwidth.
fn for_pod(list: &Value, capabilities: &Map<String, Value>) -> Value {
    let mut list = list.clone();
    if let Some(plugins) = list["plugins"].as_array_mut() {
        plugins.retain(|p| {
            let needs = |kind: &str, cap: &str| {
                p["type"] != kind
                    || p["capabilities"][cap] != true
                    || capabilities.contains_key(cap)
            };
            needs("portmap", "portMappings") && needs("bandwidth", "bandwidth")
        });
    }
    list
}

/// The network `name` from `dir`; the default one is written there first if missing.
fn find_or_create(dir: &Path, name: &str) -> Result<NetworkList, CniError> {
    match NetworkList::find(dir, name) {
        Err(CniError::NotFound { .. }) if name == DEFAULT_NETWORK => {
            write_default(dir)?;
            NetworkList::find(dir, name)
        }
        found => found,
    }
}

/// Writes the default network's file, unless a file of that name is there already
/// (a concurrent `up` wrote it, or it is the user's).
fn write_default(dir: &Path) -> Result<(), CniError> {
    let target = dir.join(DEFAULT_FILE);
    let err = |source| CniError::Write {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{DEFAULT_FILE}.{}", std::process::id()));
    let text = serde_json::to_string_pretty(&default_list()).unwrap_or_default() + "\n";
    std::fs::write(&tmp, text).map_err(err)?;
    // link(2) never replaces: the first writer's file stays.
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(err(e)),
        _ => Ok(()),
    }
}

/// The runtime values of the capabilities: published ports and shaping.
fn capabilities(ports: &[PortMapping], bw: &Bandwidth) -> Map<String, Value> {
    let mut caps = Map::new();
    if !ports.is_empty() {
        let list: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.cni(),
                });
                if let Some(ip) = p.host_ip {
                    m["hostIP"] = json!(ip.to_string());
                }
                m
            })
            .collect();
        caps.insert("portMappings".into(), Value::Array(list));
    }
    if bw.ingress.is_some() || bw.egress.is_some() {
        let mut b = Map::new();
        for (dir, rate) in [("ingress", bw.ingress), ("egress", bw.egress)] {
            if let Some(rate) = rate {
                b.insert(format!("{dir}Rate"), json!(rate));
                b.insert(format!("{dir}Burst"), json!(burst(rate)));
            }
        }
        caps.insert("bandwidth".into(), Value::Object(b));
    }
    caps
}

/// A token bucket of 100 ms of the rate, in bits: at least 32 KiB (tbf needs room
/// for a full packet), at most what the bandwidth plugin takes (burst/8 < 2^32).
fn burst(rate: u64) -> u64 {
    (rate / 10).clamp(32 * 1024 * 8, (u64::from(u32::MAX) - 1) * 8)
}

impl Attachment {
    fn call<'a>(&'a self, netns: &'a Path, cancel: Option<BorrowedFd<'a>>) -> Call<'a> {
        Call {
            list: &self.config,
            executables: &self.executables,
            container_id: &self.container_id,
            netns,
            ifname: IFNAME,
            args: &self.args,
            capabilities: &self.capabilities,
            timeout: self.timeout,
            cancel,
        }
    }

    /// The pod's addresses, from ADD's result.
    pub fn pod_ips(&self) -> Vec<String> {
        self.result
            .as_ref()
            .map(|r| cni::container_ips(r, IFNAME))
            .unwrap_or_default()
    }
}

/// Pins the network namespace of `pause` at `pin` and runs ADD, under the pod's
/// network `lock`: the attachment gets its result. On failure whatever was made is
/// undone (DEL, unpin) before returning.
/// `cancel` turns readable when the pod is being taken down meanwhile: ADD stops.
pub fn attach(
    att: &mut Attachment,
    pause: i32,
    pin: &Path,
    lock: &Path,
    masquerade_done: &Path,
    cancel: Option<BorrowedFd>,
) -> anyhow::Result<()> {
    let _lock = crate::state::lock_file(lock)?;
    masquerade(&att.config, masquerade_done)?;
    let added = self::pin(pin, pause).and_then(|()| Ok(att.call(pin, cancel).add()?));
    match added {
        Ok(result) => {
            att.result = Some(result);
            Ok(())
        }
        Err(e) => {
            let _ = att.call(pin, None).del(None);
            let _ = unpin(pin);
            Err(e)
        }
    }
}

/// For a list that asks for it ([`MASQUERADE`]): traffic from its bridge's subnets
/// to anywhere else leaves with the host's address. One iptables rule per subnet in
/// nat POSTROUTING, added unless there; `done` (in the state root, so gone at boot
/// with the rules) says it was, so that a pod's start runs no iptables at all.
fn masquerade(list: &Value, done: &Path) -> anyhow::Result<()> {
    if list[MASQUERADE] != true || done.exists() {
        return Ok(());
    }
    let _lock = crate::state::lock_file(&done.with_extension("lock"))?;
    if done.exists() {
        return Ok(());
    }
    let subnets: Vec<&str> = (list["plugins"].as_array().into_iter().flatten())
        .filter(|p| p["type"] == "bridge")
        .flat_map(|p| p["ipam"]["ranges"].as_array().into_iter().flatten())
        .flat_map(|r| r.as_array().into_iter().flatten())
        .filter_map(|r| r["subnet"].as_str())
        .collect();
    for subnet in subnets {
        let rule = [
            "POSTROUTING",
            "-s",
            subnet,
            "!",
            "-d",
            subnet,
            "-m",
            "comment",
            "--comment",
            "launcher: masquerade pod traffic out",
            "-j",
            "MASQUERADE",
        ];
        let iptables = |op: &str| {
            std::process::Command::new("iptables")
                .args(["-w", "-t", "nat", op])
                .args(rule)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .output()
        };
        let there = iptables("-C").is_ok_and(|o| o.status.success());
        if !there {
            let out =
                iptables("-A").context("failed to run iptables to masquerade the pods' subnet")?;
            if !out.status.success() {
                anyhow::bail!(
                    "iptables -t nat -A POSTROUTING -s {subnet} ... -j MASQUERADE: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
    std::fs::write(done, "").with_context(|| format!("failed to write {}", done.display()))?;
    Ok(())
}

/// DEL and unpin; harmless to repeat. The caller must be in the host's network and
/// PID namespaces, where the plugins run. A DEL that fails leaves the pin's file, so
/// that it can be tried again: through the namespace while the pod's processes may
/// live (the bridge finds the pod's addresses there), without it once they are gone.
pub fn detach(att: &Attachment, pin: &Path, lock: &Path, ended: bool) -> anyhow::Result<()> {
    let _lock = crate::state::lock_file(lock).ok();
    // No pin: a DEL went through already (the pin's file goes only after one), or
    // ADD never ran. The supervisor's teardown and `down` both come here; one DEL is
    // enough.
    if !pin.exists() {
        return Ok(());
    }
    // With the pod's processes `ended`, its namespace is let go first: unmounted, it
    // dies, and the kernel takes its interfaces with it, as it does for a pod
    // without a network; the plugins get no namespace then (CNI_NETNS empty, as the
    // specification has it for one that is gone, and containerd passes it) and
    // release what is outside it: the address, portmap's rules, bandwidth's ifb.
    // The bridge plugin's own removal of the veth waited for RCU grace periods:
    // 22 -> 12 ms of DEL here. A pin that is a file and no mount is one let go
    // before a DEL that did not finish.
    let mounted = crate::sys::is_mount_root(pin).unwrap_or(false);
    if ended && mounted {
        crate::sys::unmount_path(pin)
            .with_context(|| format!("failed to unmount {}", pin.display()))?;
    }
    let netns = match ended || !mounted {
        true => Path::new(""),
        false => pin,
    };
    att.call(netns, None).del(att.result.as_ref())?;
    unpin(pin)
}

/// Bind-mounts `/proc/<pid>/ns/net` at `pin`, making its directory a shared mount
/// of its own first if it is not one yet.
fn pin(pin: &Path, pid: i32) -> anyhow::Result<()> {
    let dir = pin.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let held = File::open(dir).with_context(|| format!("failed to open {}", dir.display()))?;
    crate::sys::flock(&held, true)?;
    if !crate::sys::is_mount_root(dir)? {
        crate::sys::bind_shared(dir)
            .with_context(|| format!("failed to make {} a shared mount", dir.display()))?;
    }
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(pin)
        .with_context(|| format!("failed to create {}", pin.display()))?;
    let source = PathBuf::from(format!("/proc/{pid}/ns/net"));
    crate::sys::bind(&source, pin).with_context(|| {
        format!(
            "failed to pin the pod's network namespace at {}",
            pin.display()
        )
    })
}

/// Unmounts and removes `pin`, and unmounts its directory once no pin is left.
fn unpin(pin: &Path) -> anyhow::Result<()> {
    let dir = pin.parent().unwrap_or(Path::new("/"));
    let Ok(held) = File::open(dir) else {
        return Ok(());
    };
    crate::sys::flock(&held, true)?;
    crate::sys::unmount_path(pin)
        .with_context(|| format!("failed to unmount {}", pin.display()))?;
    match std::fs::remove_file(pin) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("failed to remove {}", pin.display()))
        }
        _ => {}
    }
    let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if empty && crate::sys::is_mount_root(dir)? {
        crate::sys::unmount_path(dir)
            .with_context(|| format!("failed to unmount {}", dir.display()))?;
    }
    Ok(())
}

/// The host's own addresses for a pod's status: the source of its default route, else
/// of its route to `toward` (the pod), else none. No packet is sent.
pub fn host_ips(toward: Option<&str>) -> Vec<String> {
    let source = |to: std::net::IpAddr| -> Option<String> {
        let bind: std::net::SocketAddr = match to {
            std::net::IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            std::net::IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let s = std::net::UdpSocket::bind(bind).ok()?;
        s.connect((to, 9)).ok()?;
        Some(s.local_addr().ok()?.ip().to_string())
    };
    let public: std::net::IpAddr = [1, 1, 1, 1].into();
    source(public)
        .or_else(|| toward?.parse().ok().and_then(source))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn capabilities_carry_ports_and_bandwidth_as_the_plugins_read_them() {
        let ports = [
            PortMapping::parse("8080:80").unwrap(),
            PortMapping::parse("127.0.0.1:53:5353/udp").unwrap(),
        ];
        let caps = capabilities(
            &ports,
            &Bandwidth {
                ingress: Some(10_000_000),
                egress: None,
            },
        );
        assert_eq!(
            Value::Object(caps),
            json!({
                "portMappings": [
                    {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 53, "containerPort": 5353, "protocol": "udp", "hostIP": "127.0.0.1"}],
                "bandwidth": {"ingressRate": 10_000_000, "ingressBurst": 1_000_000}
            })
        );
        assert!(capabilities(&[], &Bandwidth::default()).is_empty());
        assert_eq!(burst(1_000), 262_144);
        assert_eq!(burst(1_000_000_000_000_000), (u64::from(u32::MAX) - 1) * 8);
    }

    #[test]
    fn the_default_network_is_written_once_and_found_by_name() {
        let dir = crate::testing::TempDir::new("cni-default");
        let list = find_or_create(&dir, DEFAULT_NETWORK).unwrap();
        assert_eq!(list.path, dir.join(DEFAULT_FILE));
        assert_eq!(list.config, default_list());
        // A user's own file of that name is never replaced.
        std::fs::write(dir.join(DEFAULT_FILE), "{}").unwrap();
        write_default(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(DEFAULT_FILE)).unwrap(),
            "{}"
        );
        let e = find_or_create(&dir, "other").unwrap_err().to_string();
        assert!(e.starts_with("network \"other\" not found in"), "{e}");
        assert!(
            e.contains("90-launcher.conflist: not a JSON object") || e.contains("no \"name\""),
            "{e}"
        );
    }

    #[test]
    fn a_pod_runs_the_default_lists_plugins_it_needs() {
        let types = |list: &Value| -> Vec<String> {
            (list["plugins"].as_array().unwrap().iter())
                .map(|p| p["type"].as_str().unwrap().to_string())
                .collect()
        };
        let port = PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: crate::spec::Protocol::Tcp,
            host_ip: None,
        };
        let shaped = Bandwidth {
            ingress: Some(1_000_000),
            egress: None,
        };
        let list = default_list();
        let none = capabilities(&[], &Bandwidth::default());
        assert_eq!(types(&for_pod(&list, &none)), ["bridge"]);
        let ports = capabilities(std::slice::from_ref(&port), &Bandwidth::default());
        assert_eq!(types(&for_pod(&list, &ports)), ["bridge", "portmap"]);
        let both = capabilities(&[port], &shaped);
        assert_eq!(
            types(&for_pod(&list, &both)),
            ["bridge", "portmap", "bandwidth"]
        );
        // What the bridge does is left as the list says; masquerading is the runtime's.
        assert_eq!(for_pod(&list, &none)["plugins"][0]["ipMasq"], false);
        assert_eq!(for_pod(&list, &none)[MASQUERADE], true);
    }
}
