//! `launcher completion SHELL` and the man pages, both made from the same clap
//! definitions as the parser itself, so they never disagree with it.

use super::print;
use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Prints the completion script for `shell`.
pub fn completion(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "launcher", &mut script);
    print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Writes `launcher.1` and one `launcher-<command>.1` per visible command into `dir`.
pub fn man(dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let cmd = Cli::command().name("launcher");
    let mut pages = vec![("launcher".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("launcher-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut text)
            .with_context(|| format!("failed to render {name}.1"))?;
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(0)
}
