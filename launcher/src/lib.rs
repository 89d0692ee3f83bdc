//! launcher: starts, joins, supervises and stops pods of processes.
//!
//! Where things are:
//! - `machine`: the pod as a pure state machine (kubelet policy: starts, probes,
//!   hooks, stops, restarts, phase, conditions), unit-tested with a fake clock;
//! - `driver`: the supervisor's poll loop that runs the machine against the kernel
//!   (`driver::Kernel`), its output pump and its publisher;
//! - `sandbox`: everything a pod has besides its processes (volumes, cgroups, pause,
//!   network, data, state), made in one place, taken apart by one idempotent teardown;
//! - `layout`: every path of a pod, from the roots, its name and uid;
//! - `process`: the plan of a process in a container, and its spawn;
//! - `kube`: Kubernetes Pod objects in and out; `spec` the runtime's own model (what
//!   was asked, what was resolved for it, what was learned);
//! - `commands`: one file per command; `record` the pod's record; `state` trusted
//!   files, locks and processes;
//! - kernel concepts: `cgroup`, `namespaces`, `mounts` (what a pod sees of the
//!   machine), `layer` (a container's writable layer over the host's files), `names`
//!   (a pod's hosts, hostname and resolv.conf), `qos` (QoS class, oom_score_adj),
//!   `sysctl` (which of a pod's sysctls are admitted),
//!   `seccomp` (syscall filters), `sys`
//!   (raw syscalls), `procfs` (what /proc says), `probe`, `logs`, `terminal` (ptys).
//!
//! Unsafe code lives only in the modules allowed below: `sys` (raw syscalls),
//! `namespaces` and `process` (the clone3 children, which may only make child-safe
//! calls), `driver` (the terminal's fds; its tests' FIONREAD), `commands` (the detached supervisor's
//! pre-exec hook and its inherited fds) and `network::netlink` (a NETLINK_ROUTE socket).
#![deny(unsafe_code)]

pub mod attach;
pub mod cgroup;
pub mod cli;
#[allow(unsafe_code)]
pub mod commands;
#[allow(unsafe_code)]
pub mod driver;
pub mod events;
pub mod kube;
pub mod layer;
pub mod layout;
pub mod logs;
pub mod machine;
pub mod mounts;
pub mod names;
#[allow(unsafe_code)]
pub mod namespaces;
pub mod network;
pub mod notify;
pub mod probe;
#[allow(unsafe_code)]
pub mod process;
pub mod procfs;
pub mod qos;
pub mod quantity;
pub mod record;
pub mod sandbox;
pub mod seccomp;
pub mod selector;
pub mod spec;
pub mod state;
pub mod status;
#[allow(unsafe_code)]
pub mod sys;
pub mod sysctl;
pub mod terminal;
#[cfg(test)]
mod testing;
pub mod timings;
pub mod users;
pub mod volumes;

use cli::{Cli, Command};

/// Runs one command; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let opts = commands::Opts {
        root: cli.root,
        data_root: cli.data_root,
        cgroup_parent: cli.cgroup_parent,
        pause: cli.pause,
    };
    match &cli.command {
        Command::Up(a) => commands::up(&opts, a),
        Command::Down(a) => commands::down(&opts, a),
        Command::Ps(a) => commands::ps(&opts, a),
        Command::Status(a) => commands::status(&opts, a),
        Command::Exec(a) => commands::exec(&opts, a),
        Command::Attach(a) => commands::attach(&opts, a),
        Command::Logs(a) => commands::logs(&opts, a),
        Command::Wait(a) => commands::wait(&opts, a),
        Command::Describe(a) => commands::describe(&opts, a),
        Command::Events(a) => commands::events(&opts, a),
        Command::Top(a) => commands::top(&opts, a),
        Command::Volume(a) => commands::volume(&opts, a),
        Command::Completion { shell } => commands::completion(*shell),
        Command::Man { dir } => commands::man(dir),
        Command::Supervise { name } => commands::supervise_detached(&opts, name),
    }
}
