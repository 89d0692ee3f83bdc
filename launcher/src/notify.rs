//! systemd's service notification protocol (sd_notify(3)), for `launcher up` in the
//! foreground as a `Type=notify` service: READY=1 once every container runs and is
//! ready, STATUS= lines as containers restart, STOPPING=1 when the pod begins to
//! stop. Without `NOTIFY_SOCKET` in the environment it does nothing.

use crate::status::PodStatus;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
    ready: bool,
    stopping: bool,
    restarts: u32,
}

impl Notifier {
    /// The socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract
    /// namespace), if any. The variable is removed, as sd_notify's unset_environment
    /// does, so that nothing the launcher starts talks to systemd in its name.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        std::env::remove_var("NOTIFY_SOCKET");
        let bytes = name.as_encoded_bytes();
        let to = match bytes.strip_prefix(b"@") {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name).ok()?,
            None => SocketAddr::from_pathname(std::path::Path::new(&name)).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier {
            socket,
            to,
            ready: false,
            stopping: false,
            restarts: 0,
        })
    }

    fn send(&self, message: &str) {
        // systemd not listening any more is no reason to disturb the pod.
        let _ = self.socket.send_to_addr(message.as_bytes(), &self.to);
    }

    /// Tells systemd what changed in the pod's new status.
    pub fn status(&mut self, pod: &str, status: &PodStatus) {
        let ready = status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True");
        let all = || {
            status
                .init_container_statuses
                .iter()
                .chain(&status.container_statuses)
        };
        let restarts: u32 = all().map(|c| c.restart_count).sum();
        if restarts > self.restarts {
            let names: Vec<String> = all()
                .filter(|c| c.restart_count > 0)
                .map(|c| format!("{} x{}", c.name, c.restart_count))
                .collect();
            self.send(&format!("STATUS=pod {pod}: restarted {}", names.join(", ")));
            self.restarts = restarts;
        }
        if ready && !self.ready && !self.stopping {
            self.ready = true;
            let n = status.container_statuses.len();
            self.send(&format!(
                "READY=1\nSTATUS=pod {pod}: {n}/{n} containers ready"
            ));
        }
    }

    /// The pod begins to stop.
    pub fn stopping(&mut self, pod: &str) {
        if !self.stopping {
            self.stopping = true;
            self.send(&format!("STOPPING=1\nSTATUS=pod {pod}: stopping"));
        }
    }
}
