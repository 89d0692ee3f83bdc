//! The default network's `bridge` with `host-local` addresses, built in: the same
//! bridge, veth pair, addresses, route and IPAM files as the reference plugins make
//! for the configuration the launcher writes ([`is_default`]), without their four
//! executions per pod (a Go plugin takes ~4 ms here just to start; a plain pod's ADD
//! ran two, its DEL two). Any other configuration, a user's edit included, runs the
//! plugins themselves.
//!
//! The addresses are kept as host-local keeps them, in `/var/lib/cni/networks/<network>`
//! (a file per address holding the container's id and interface, `last_reserved_ip.0`,
//! a `lock` file to flock), so pods attached by either are released by either.
//!
//! Its entry points are `#[cold]`: run once per pod, they are laid out away from the
//! code a supervisor runs for as long as its pod lives, whose pages are what stays
//! resident (a supervisor's resident set 1984 -> 1920 KiB with it).

use super::netlink::Netlink;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where host-local keeps its reservations.
const IPAM_DIR: &str = "/var/lib/cni/networks";
/// host-local's line break between a reservation's container id and interface.
const LINE_BREAK: &str = "\r\n";

/// Is `plugin` (with the list's `name`) the default network's bridge exactly as
/// [`super::default_list`] writes it?
#[cold]
pub fn is_default(name: &str, plugin: &Value) -> bool {
    let default = super::default_list();
    name == super::DEFAULT_NETWORK && default["plugins"][0] == *plugin
}

/// What a call needs of the pod.
pub struct Pod<'a> {
    pub network: &'a str,
    pub container_id: &'a str,
    pub ifname: &'a str,
    /// The pod's network namespace; empty on a DEL after it is gone.
    pub netns: &'a Path,
    pub cni_version: &'a str,
}

/// The default bridge's settings, read from its configuration.
struct Conf {
    bridge: String,
    subnet: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
}

fn conf(plugin: &Value) -> io::Result<Conf> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected configuration");
    let range = &plugin["ipam"]["ranges"][0][0];
    let (subnet, prefix) = range["subnet"]
        .as_str()
        .and_then(|s| s.split_once('/'))
        .ok_or_else(bad)?;
    Ok(Conf {
        bridge: plugin["bridge"].as_str().ok_or_else(bad)?.to_string(),
        subnet: subnet.parse().map_err(|_| bad())?,
        prefix: prefix.parse().map_err(|_| bad())?,
        gateway: range["gateway"]
            .as_str()
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?,
    })
}

/// ADD: an address, the bridge (made once), a veth pair into the pod's namespace,
/// the pod's address and default route; the result as the bridge plugin gives it.
#[cold]
pub fn add(pod: &Pod, plugin: &Value) -> io::Result<Value> {
    let c = conf(plugin)?;
    let store = Path::new(IPAM_DIR);
    let ip = reserve(store, pod, &c).map_err(at(&format!(
        "reserve an address in {}",
        store.join(pod.network).display()
    )))?;
    match attach(pod, &c, ip) {
        Ok(result) => Ok(result),
        Err(e) => {
            // Nothing of it stays: the address goes back; the veth, if made, went
            // into the pod's namespace and goes with it or with DEL.
            let _ = release(store, pod);
            Err(e)
        }
    }
}

/// DEL: the address released, and the pod's interface removed if its namespace is
/// still there (else the kernel took it with the namespace).
#[cold]
pub fn del(pod: &Pod) -> io::Result<()> {
    let store = Path::new(IPAM_DIR);
    release(store, pod).map_err(at(&format!(
        "release the pod's address in {}",
        store.join(pod.network).display()
    )))?;
    if pod.netns.as_os_str().is_empty() {
        return Ok(());
    }
    let ifname = pod.ifname.to_string();
    match in_netns(pod.netns, move || Netlink::open()?.delete(&ifname)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn attach(pod: &Pod, c: &Conf, ip: Ipv4Addr) -> io::Result<Value> {
    let br = &c.bridge;
    let mut nl = Netlink::open().map_err(at("open a netlink socket"))?;
    nl.add_bridge(br)
        .map_err(at(&format!("make bridge {br}")))?;
    let bridge = nl.link(br).map_err(at(&format!("find bridge {br}")))?;
    nl.add_address(bridge.index, c.gateway, c.prefix)
        .map_err(at(&format!("give bridge {br} the gateway {}", c.gateway)))?;
    nl.up(bridge.index)
        .map_err(at(&format!("set bridge {br} up")))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(at(
        "turn on IPv4 forwarding (/proc/sys/net/ipv4/ip_forward)",
    ))?;
    let host = format!("veth{:08x}", crate::sys::random_u32()?);
    let netns = File::open(pod.netns).map_err(at(&format!(
        "open the pod's network namespace {}",
        pod.netns.display()
    )))?;
    nl.add_veth(&host, bridge.index, pod.ifname, netns.as_raw_fd())
        .map_err(at(&format!(
            "make the veth pair {host} - {} under {br}",
            pod.ifname
        )))?;
    let veth = nl.link(&host).map_err(at(&format!("find {host}")))?;
    // Hairpin: a pod reaches itself through its own published ports.
    nl.hairpin(veth.index)
        .map_err(at(&format!("set hairpin mode on {host}")))?;
    nl.up(veth.index).map_err(at(&format!("set {host} up")))?;
    let (ifname, gateway, prefix) = (pod.ifname.to_string(), c.gateway, c.prefix);
    let inner = in_netns(pod.netns, move || {
        let mut nl = Netlink::open()?;
        let link = nl.link(&ifname)?;
        nl.add_address(link.index, ip, prefix)?;
        nl.up(link.index)?;
        nl.add_default_route(link.index, gateway)?;
        Ok(link.mac)
    })
    .map_err(at(&format!(
        "give the pod's {} address {ip}/{prefix} and a default route via {gateway}",
        pod.ifname
    )))?;
    Ok(json!({
        "cniVersion": pod.cni_version,
        "interfaces": [
            {"name": c.bridge, "mac": bridge.mac},
            {"name": host, "mac": veth.mac},
            {"name": pod.ifname, "mac": inner, "sandbox": pod.netns},
        ],
        "ips": [{"interface": 2, "address": format!("{ip}/{}", c.prefix), "gateway": c.gateway.to_string()}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {},
    }))
}

/// An error of step `what`, saying so (its kind kept).
fn at(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Runs `work` on a thread of its own in the network namespace at `netns` (a thread
/// may change its network namespace alone).
fn in_netns<T: Send + 'static>(
    netns: &Path,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            crate::sys::setns(ns.as_raw_fd(), libc::CLONE_NEWNET)?;
            work()
        })?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread panicked")))
}

/// The network's reservation directory, locked (host-local's `lock` file).
struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// The reservations of `network` under `base` (host-local's data directory).
    fn open(base: &Path, network: &str) -> io::Result<Store> {
        let dir = base.join(network);
        std::fs::create_dir_all(&dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        crate::sys::flock(&lock, true)?;
        Ok(Store { dir, _lock: lock })
    }

    fn owner(&self, id: &str, ifname: &str) -> String {
        format!("{}{LINE_BREAK}{ifname}", id.trim())
    }
}

/// The next free address of the subnet after the last one reserved (host-local's
/// order: the network and broadcast addresses and the gateway are never given).
fn reserve(base: &Path, pod: &Pod, c: &Conf) -> io::Result<Ipv4Addr> {
    let store = Store::open(base, pod.network)?;
    let last_file = store.dir.join("last_reserved_ip.0");
    let size = 1u32 << (32 - u32::from(c.prefix));
    let base = u32::from(c.subnet);
    let (first, last) = (base + 1, base + size - 2);
    let start = std::fs::read_to_string(&last_file)
        .ok()
        .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .filter(|&a| (first..=last).contains(&a))
        .map_or(first, |a| if a >= last { first } else { a + 1 });
    let owner = store.owner(pod.container_id, pod.ifname);
    let mut a = start;
    for _ in 0..(last - first + 1) {
        let ip = Ipv4Addr::from(a);
        if ip != c.gateway {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(store.dir.join(ip.to_string()))
            {
                Ok(mut f) => {
                    f.write_all(owner.as_bytes())?;
                    std::fs::write(&last_file, ip.to_string())?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        a = if a >= last { first } else { a + 1 };
    }
    Err(io::Error::other(format!(
        "no IP addresses available in range set: {}/{}",
        c.subnet, c.prefix
    )))
}

/// Releases what `pod` holds (host-local's match: its id and interface, or its id
/// alone as older versions wrote it).
fn release(base: &Path, pod: &Pod) -> io::Result<()> {
    let store = Store::open(base, pod.network)?;
    let owner = store.owner(pod.container_id, pod.ifname);
    for entry in std::fs::read_dir(&store.dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "lock" || name.starts_with("last_reserved_ip") {
            continue;
        }
        let Ok(held) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if held.trim() == owner || held.trim() == pod.container_id.trim() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pod(id: &str) -> Pod<'_> {
        Pod {
            network: "launcher",
            container_id: id,
            ifname: "eth0",
            netns: Path::new(""),
            cni_version: "1.0.0",
        }
    }

    fn base(tag: &str) -> crate::testing::TempDir {
        crate::testing::TempDir::new(&format!("bridge-test-{tag}"))
    }

    #[test]
    fn the_default_bridge_is_recognised_and_nothing_else() {
        let list = super::super::default_list();
        let bridge = &list["plugins"][0];
        assert!(is_default("launcher", bridge));
        assert!(!is_default("other", bridge));
        let mut edited = bridge.clone();
        edited["mtu"] = 1500.into();
        assert!(!is_default("launcher", &edited));
        assert!(!is_default("launcher", &list["plugins"][1]));
    }

    #[test]
    fn addresses_go_in_order_past_the_gateway_and_come_back_as_host_local_keeps_them() {
        let dir = base("order");
        let c = conf(&super::super::default_list()["plugins"][0]).unwrap();
        let a = reserve(&dir, &pod("a"), &c).unwrap();
        let b = reserve(&dir, &pod("b"), &c).unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3))
        );
        let held = std::fs::read_to_string(dir.join("launcher/10.77.0.2")).unwrap();
        assert_eq!(held, "a\r\neth0");
        assert_eq!(
            std::fs::read_to_string(dir.join("launcher/last_reserved_ip.0")).unwrap(),
            "10.77.0.3"
        );
        release(&dir, &pod("a")).unwrap();
        assert!(!dir.join("launcher/10.77.0.2").exists());
        // After the last one given, not the first free one (host-local's order).
        assert_eq!(
            reserve(&dir, &pod("c"), &c).unwrap(),
            Ipv4Addr::new(10, 77, 0, 4)
        );
        // An id alone, as older host-local versions wrote it, is released too.
        std::fs::write(dir.join("launcher/10.77.0.9"), "old").unwrap();
        release(&dir, &pod("old")).unwrap();
        assert!(!dir.join("launcher/10.77.0.9").exists());
    }

    #[test]
    fn a_full_subnet_says_so_and_wraps_around() {
        let dir = base("full");
        let mut plugin = super::super::default_list()["plugins"][0].clone();
        plugin["ipam"]["ranges"][0][0] = json!({"subnet": "10.9.0.0/29", "gateway": "10.9.0.1"});
        let c = conf(&plugin).unwrap();
        // .2 to .6: five addresses (not .0, .1 the gateway, .7 broadcast).
        let got: Vec<_> = (0..5)
            .map(|i| reserve(&dir, &pod(&format!("p{i}")), &c).unwrap())
            .collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 9, 0, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 9, 0, 6)));
        let err = reserve(&dir, &pod("p5"), &c).unwrap_err();
        assert!(
            err.to_string().contains("no IP addresses available"),
            "{err}"
        );
        release(&dir, &pod("p2")).unwrap();
        assert_eq!(
            reserve(&dir, &pod("p6"), &c).unwrap(),
            Ipv4Addr::new(10, 9, 0, 4)
        );
    }
}
