//! `launcher completion SHELL` and the man pages, both made from the same clap
//! definitions as the parser itself, so they never disagree with it.

use super::print;
use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Prints the completion script for `shell`: it asks `launcher` itself on each TAB,
/// so pod, container and volume names come from the live state (see `complete.rs`).
pub fn completion(shell: clap_complete::Shell) -> Result<i32> {
    let script = super::complete::registration(shell);
    print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Variables no flag stands for, for the ENVIRONMENT section (the flags' own come
/// from their definitions).
const MORE_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "LAUNCHER_TIMINGS",
        "When set (not 0), up and down print where their time went, phase by phase, on stderr.",
    ),
    (
        "NOTIFY_SOCKET",
        "Set by systemd for a Type=notify unit: a foreground up reports READY=1, STATUS= and STOPPING=1 there.",
    ),
];

/// Every variable a flag reads (`env = ...`), with the flag and its help, once each.
fn environment(cmd: &clap::Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut visit = vec![cmd.clone()];
    while let Some(mut c) = visit.pop() {
        // Its arguments, which the parser defers until a command is used.
        c.build();
        for arg in c.get_arguments() {
            let Some(var) = arg.get_env().and_then(|v| v.to_str()) else {
                continue;
            };
            if vars.iter().any(|(v, _)| v == var) {
                continue;
            }
            let flag = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            vars.push((var.to_string(), format!("{help} ({flag}).")));
        }
        visit.extend(c.get_subcommands().cloned());
    }
    vars.sort();
    vars.extend(
        MORE_ENVIRONMENT
            .iter()
            .map(|(v, w)| (v.to_string(), w.to_string())),
    );
    vars
}

const EXIT_STATUS: &str =
    "0 on success; 1 on a failure; 2 on bad input (a usage error, an invalid \
manifest: nothing is started or left behind). A foreground up exits with its pod's status (the \
first failing container's code; 0 for a pod stopped on request), exec with its command's \
(128+N when killed by signal N; 126/127 when it cannot be run).";

/// Writes `launcher.1` and one `launcher-<command>.1` per visible command into `dir`,
/// each with ENVIRONMENT, EXIT STATUS and SEE ALSO sections naming pages that exist.
pub fn man(dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let cmd = Cli::command().name("launcher");
    let mut pages = vec![("launcher".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("launcher-{}", sub.get_name());
        // The page is launcher-up(1); its synopsis is the command as typed.
        let typed = format!("launcher {}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name).bin_name(typed)));
    }
    let names: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    let vars = environment(&cmd);
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut text)
            .with_context(|| format!("failed to render {name}.1"))?;
        text.extend_from_slice(sections(&name, &names, &vars).as_bytes());
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(0)
}

/// ENVIRONMENT, EXIT STATUS and SEE ALSO, in roff.
fn sections(page: &str, pages: &[String], vars: &[(String, String)]) -> String {
    let roff = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    let mut text = String::from(".SH ENVIRONMENT\n");
    for (var, what) in vars {
        text += &format!(".TP\n\\fB{}\\fR\n{}\n", roff(var), roff(what));
    }
    text += &format!(".SH \"EXIT STATUS\"\n{}\n", roff(EXIT_STATUS));
    let others: Vec<String> = (pages.iter())
        .filter(|p| *p != page)
        .map(|p| format!("\\fB{}\\fR(1)", roff(p)))
        .collect();
    text += &format!(".SH \"SEE ALSO\"\n{}\n", others.join(", "));
    text
}
