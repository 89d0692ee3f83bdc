//! launcher: starts, joins, supervises and stops pods of processes.
//!
//! Modules follow the kernel concepts they wrap. Unsafe code lives only in the
//! modules allowed below: `sys` (raw syscalls), `namespaces` and `process` (the
//! clone3 children, which may only make child-safe calls), and `pod` (the detached
//! supervisor's pre-exec hook and its inherited ready pipe).
#![deny(unsafe_code)]

pub mod cgroup;
pub mod cli;
pub mod logs;
pub mod manifest;
#[allow(unsafe_code)]
pub mod namespaces;
#[allow(unsafe_code)]
pub mod pod;
pub mod probe;
#[allow(unsafe_code)]
pub mod process;
pub mod quantity;
pub mod spec;
pub mod state;
pub mod status;
pub mod supervisor;
#[allow(unsafe_code)]
pub mod sys;

use cli::{Cli, Command};

/// Runs one command; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let ctx = pod::Opts {
        root: cli.root,
        cgroup_parent: cli.cgroup_parent,
        pause: cli.pause,
    };
    match &cli.command {
        Command::Up(a) => pod::up(&ctx, a),
        Command::Down(a) => pod::down(&ctx, a),
        Command::Ps(a) => pod::ps(&ctx, a),
        Command::Status(a) => pod::status_cmd(&ctx, a),
        Command::Exec(a) => pod::exec(&ctx, a),
        Command::Logs(a) => pod::logs(&ctx, a),
        Command::Supervise { name } => pod::supervise(&ctx, name, false, pod::ready_pipe(), None),
    }
}
