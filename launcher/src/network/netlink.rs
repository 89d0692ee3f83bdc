//! Just enough rtnetlink (rtnetlink(7)) for the built-in bridge: make a bridge and a
//! veth pair, set links up and under a master, give addresses and a default route.
//! One request at a time, each acknowledged.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_PROTINFO: u16 = 12;
const IFLA_BRPORT_MODE: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const RTM_SETLINK: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;

/// A NETLINK_ROUTE socket of the network namespace it was made in.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A link as the kernel reports it.
pub struct Link {
    pub index: i32,
    pub mac: String,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain integer arguments; the result is a new fd we own.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Netlink { fd, seq: 0 })
    }

    /// A bridge named `name`, unless there is one (false then).
    pub fn add_bridge(&mut self, name: &str) -> io::Result<bool> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(info);
        match self.ack(m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            r => r.map(|_| true),
        }
    }

    /// A veth pair: `name` here, under `master`, and `peer` in the network namespace
    /// `netns`.
    pub fn add_veth(&mut self, name: &str, master: i32, peer: &str, netns: i32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.attr(IFLA_MASTER, &master.to_ne_bytes());
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        let p = m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer);
        m.attr(IFLA_NET_NS_FD, &netns.to_ne_bytes());
        m.end(p);
        m.end(data);
        m.end(info);
        self.ack(m)
    }

    /// Link `name`: its index and address.
    pub fn link(&mut self, name: &str) -> io::Result<Link> {
        let mut m = Msg::new(RTM_GETLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        let reply = self.request(m)?;
        // ifinfomsg after the header: the index at 4..8, then the attributes.
        let body = reply.get(16..).unwrap_or_default();
        let index = i32::from_ne_bytes(
            body.get(4..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        );
        let mut mac = String::new();
        for (kind, value) in attrs(body.get(16..).unwrap_or_default()) {
            if kind == IFLA_ADDRESS {
                mac = value
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":");
            }
        }
        Ok(Link { index, mac })
    }

    /// Hairpin mode on bridge port `index`: what it receives it may send back out
    /// the same port (a pod reaching itself through a published port).
    pub fn hairpin(&mut self, index: i32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.ifinfo(index, 0, 0);
        m.buf[16] = libc::AF_BRIDGE as u8;
        let info = m.begin(IFLA_PROTINFO | NLA_F_NESTED);
        m.attr(IFLA_BRPORT_MODE, &[1]);
        m.end(info);
        self.ack(m)
    }

    /// Sets link `index` up.
    pub fn up(&mut self, index: i32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index, libc::IFF_UP as u32, libc::IFF_UP as u32);
        self.ack(m)
    }

    /// Removes link `name`, if it is there.
    pub fn delete(&mut self, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.ack(m) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r,
        }
    }

    /// `addr/prefix` on link `index`, unless it has it.
    pub fn add_address(&mut self, index: i32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&[libc::AF_INET as u8, prefix, 0, 0]);
        m.bytes(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        let host = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
        m.attr(
            IFA_BROADCAST,
            &Ipv4Addr::from(u32::from(addr) | host).octets(),
        );
        match self.ack(m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// The default route through `gateway` on link `index`.
    pub fn add_default_route(&mut self, index: i32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // family, dst_len, src_len, tos, table main, protocol boot, scope universe,
        // type unicast; flags.
        m.bytes(&[libc::AF_INET as u8, 0, 0, 0, 254, 3, 0, 1]);
        m.bytes(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr(RTA_OIF, &(index as u32).to_ne_bytes());
        self.ack(m)
    }

    fn ack(&mut self, m: Msg) -> io::Result<()> {
        self.request(m).map(drop)
    }

    /// Sends `m` and returns the kernel's answer: the reply message, or its error.
    fn request(&mut self, mut m: Msg) -> io::Result<Vec<u8>> {
        self.seq += 1;
        let bytes = m.finish(self.seq);
        // SAFETY: a valid buffer of its length; the kernel is the destination (the
        // socket's default).
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: a valid buffer of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let msg = &buf[..n as usize];
            if msg.len() < 16 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "short netlink reply",
                ));
            }
            let kind = u16::from_ne_bytes([msg[4], msg[5]]);
            let seq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
            if seq != self.seq {
                continue;
            }
            if kind == NLMSG_ERROR {
                let code = i32::from_ne_bytes([msg[16], msg[17], msg[18], msg[19]]);
                return match code {
                    0 => Ok(Vec::new()),
                    c => Err(io::Error::from_raw_os_error(-c)),
                };
            }
            let len =
                (u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize).min(msg.len());
            return Ok(msg[..len].to_vec());
        }
    }
}

/// The attributes in `bytes`, as (type, value).
fn attrs(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[align(len).min(bytes.len())..];
    }
    out
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Msg { buf }
    }

    /// An ifinfomsg: AF_UNSPEC, `index`, `flags` of `change`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.bytes(&[0, 0, 0, 0]);
        self.bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes());
        self.bytes(&change.to_ne_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.bytes(&(len as u16).to_ne_bytes());
        self.bytes(&kind.to_ne_bytes());
        self.bytes(value);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v);
    }

    /// Opens a nested attribute; [`Msg::end`] closes it.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.bytes(&[0, 0]);
        self.bytes(&kind.to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}
