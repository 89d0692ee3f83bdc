//! Shell completion that knows the live state: pod names where a command takes a pod,
//! the pod's containers for `-c` (and `logs POD CONTAINER`), named volumes for
//! `volume rm`, `wait --for`'s conditions; hidden commands never offered.
//!
//! clap_complete's dynamic engine: the script `launcher completion SHELL` prints calls
//! `LAUNCHER_COMPLETE=SHELL launcher -- WORDS...` on every TAB, which [`respond`] answers
//! from the same clap definitions as the parser, plus the candidates below. Nothing is
//! made or changed: a missing root has no pods.

use crate::cli::Cli;
use crate::layout::{Roots, RECORD};
use crate::record::PodRecord;
use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{CompleteEnv, EnvCompleter};
use std::ffi::OsString;
use std::path::PathBuf;

/// The variable the completion scripts set: its value is the shell.
const VAR: &str = "LAUNCHER_COMPLETE";

/// Answers a completion request and exits, when this run is one; else returns.
pub fn respond() {
    if std::env::var_os(VAR).is_none() {
        return;
    }
    use clap_complete::env;
    let shells: [&dyn EnvCompleter; 5] = [
        &NamesFirst(&env::Bash),
        &NamesFirst(&env::Zsh),
        &NamesFirst(&env::Fish),
        &NamesFirst(&env::Elvish),
        &NamesFirst(&env::Powershell),
    ];
    CompleteEnv::with_factory(command)
        .var(VAR)
        .shells(env::Shells(&shells))
        .complete();
}

/// A shell's completer that offers flags only for a word that starts with `-` when
/// there are names to offer, as kubectl's: `volume rm <TAB>` completes the one volume.
struct NamesFirst(&'static dyn EnvCompleter);

impl EnvCompleter for NamesFirst {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn is(&self, name: &str) -> bool {
        self.0.is(name)
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        self.0.write_registration(var, name, bin, completer, buf)
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&std::path::Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        // The word under the cursor: at the index the script passes (bash, zsh), else
        // the last one.
        let index = std::env::var("_CLAP_COMPLETE_INDEX").ok();
        let current = match index.and_then(|i| i.parse::<usize>().ok()) {
            Some(i) => args.get(i).cloned().unwrap_or_default(),
            None => args.last().cloned().unwrap_or_default(),
        };
        let mut out = Vec::new();
        self.0.write_complete(cmd, args, current_dir, &mut out)?;
        let out = String::from_utf8_lossy(&out);
        // Candidates are separated by the IFS the script passes, else by newlines.
        let sep = std::env::var("_CLAP_IFS").unwrap_or_else(|_| "\n".into());
        let candidates: Vec<&str> = out.split(sep.as_str()).collect();
        let is_flag = |c: &&str| c.starts_with('-');
        let names = candidates.iter().any(|c| !c.is_empty() && !is_flag(c));
        let keep: Vec<&str> = if names && !current.to_string_lossy().starts_with('-') {
            candidates.into_iter().filter(|c| !is_flag(c)).collect()
        } else {
            candidates
        };
        buf.write_all(keep.join(sep.as_str()).as_bytes())
    }
}

/// The script that registers completion for `launcher` in `shell`.
pub fn registration(shell: clap_complete::Shell) -> Vec<u8> {
    use clap_complete::env;
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &env::Bash,
        clap_complete::Shell::Zsh => &env::Zsh,
        clap_complete::Shell::Fish => &env::Fish,
        clap_complete::Shell::Elvish => &env::Elvish,
        clap_complete::Shell::PowerShell => &env::Powershell,
        _ => &env::Bash,
    };
    let mut script = Vec::new();
    // The completer is whichever `launcher` is on PATH when TAB is pressed: the script
    // is written once (`make install`) from a binary that may not stay where it was.
    let _ = completer.write_registration(VAR, "launcher", "launcher", "launcher", &mut script);
    script
}

/// The command line as completion sees it: the parser's, without its hidden commands
/// (the engine would offer a hidden one whose prefix is typed), with value candidates.
fn command() -> clap::Command {
    let top = Cli::command();
    // Every command with its arguments, which the parser defers until a command is
    // used, and the global ones; without clap's own `help` command (the engine adds
    // its own, as it adds --help and --version to the top, which `top` has not yet).
    let mut built = Cli::command();
    built.build();
    let mut cmd = clap::Command::new("launcher")
        .about(top.get_about().cloned().unwrap_or_default())
        .version(top.get_version().map(str::to_string).unwrap_or_default())
        .args(top.get_arguments().cloned())
        .subcommands(
            (built.get_subcommands())
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .cloned(),
        );
    let pods = || ArgValueCandidates::new(pods);
    for (sub, arg) in [
        ("down", "names"),
        ("ps", "names"),
        ("status", "name"),
        ("exec", "name"),
        ("attach", "name"),
        ("logs", "name"),
        ("describe", "name"),
        ("events", "name"),
        ("top", "name"),
        ("wait", "name"),
    ] {
        cmd = cmd.mut_subcommand(sub, |s| s.mut_arg(arg, |a| a.add(pods())));
    }
    let containers = || ArgValueCandidates::new(containers);
    for (sub, arg) in [
        ("exec", "container"),
        ("attach", "container"),
        ("logs", "container"),
        ("logs", "container_arg"),
    ] {
        cmd = cmd.mut_subcommand(sub, |s| s.mut_arg(arg, |a| a.add(containers())));
    }
    cmd.mut_subcommand("events", |s| {
        s.mut_arg("for_object", |a| a.add(ArgValueCandidates::new(pod_refs)))
    })
    .mut_subcommand("wait", |s| {
        s.mut_arg("condition", |a| a.add(ArgValueCandidates::new(conditions)))
    })
    .mut_subcommand("volume", |v| {
        v.mut_subcommand("rm", |rm| {
            rm.mut_arg("names", |a| a.add(ArgValueCandidates::new(volumes)))
        })
    })
}

/// The words being completed: what follows `--` in this run's arguments.
fn words() -> Vec<String> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let start = args
        .iter()
        .position(|a| a == "--")
        .map_or(args.len(), |i| i + 1);
    args[start..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// `--flag VALUE` or `--flag=VALUE` among `words`, else the flag's variable, else `default`.
fn flag(words: &[String], flag: &str, var: &str, default: &str) -> PathBuf {
    let given = words.iter().enumerate().find_map(|(i, w)| {
        if w == flag {
            words.get(i + 1).cloned()
        } else {
            w.strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
        }
    });
    PathBuf::from(
        given
            .or_else(|| std::env::var(var).ok())
            .unwrap_or(default.into()),
    )
}

fn roots() -> Roots {
    let words = words();
    Roots {
        state: flag(
            &words,
            "--root",
            "LAUNCHER_ROOT",
            crate::layout::DEFAULT_STATE_ROOT,
        ),
        data: flag(
            &words,
            "--data-root",
            "LAUNCHER_DATA_ROOT",
            crate::layout::DEFAULT_DATA_ROOT,
        ),
    }
}

fn pod_names() -> Vec<String> {
    crate::state::subdirectories(&roots().state)
}

fn pods() -> Vec<CompletionCandidate> {
    pod_names()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

fn pod_refs() -> Vec<CompletionCandidate> {
    (pod_names().into_iter())
        .map(|p| CompletionCandidate::new(format!("pod/{p}")))
        .collect()
}

/// The containers (init containers first) of the pod named on the command line, or of
/// every pod when none is named yet.
fn containers() -> Vec<CompletionCandidate> {
    let roots = roots();
    let pods = pod_names();
    let named: Vec<String> = (words().iter())
        .map(|w| w.strip_prefix("pod/").unwrap_or(w).to_string())
        .filter(|w| pods.contains(w))
        .collect();
    let of = if named.is_empty() { pods } else { named };
    let mut names: Vec<String> = Vec::new();
    for pod in of {
        let path = roots.state_dir(&pod).join(RECORD);
        let Ok(rec) = crate::state::read_json::<PodRecord>(&path) else {
            continue;
        };
        for c in rec.spec.init_containers.iter().chain(&rec.spec.containers) {
            if !names.contains(&c.name) {
                names.push(c.name.clone());
            }
        }
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

fn volumes() -> Vec<CompletionCandidate> {
    (crate::state::subdirectories(&roots().claims()).into_iter())
        .map(CompletionCandidate::new)
        .collect()
}

fn conditions() -> Vec<CompletionCandidate> {
    [
        "condition=Ready",
        "condition=ContainersReady",
        "condition=Initialized",
        "condition=PodScheduled",
        "delete",
        "create",
        "jsonpath={.status.phase}=Succeeded",
        "jsonpath={.status.phase}=Failed",
    ]
    .into_iter()
    .map(CompletionCandidate::new)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_hides_hidden_commands_and_keeps_the_rest() {
        let cmd = command();
        let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
        assert!(
            names.contains(&"up") && names.contains(&"logs"),
            "{names:?}"
        );
        assert!(!names.contains(&"supervise") && !names.contains(&"man"));
        // Every visible command of the parser is there.
        let visible = Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .count();
        assert_eq!(names.len(), visible);
    }

    #[test]
    fn every_arg_named_for_candidates_exists() {
        // mut_arg on a missing id panics: building the command is the check.
        command().build();
    }

    #[test]
    fn a_flag_is_read_in_both_forms() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = |words: &[String]| flag(words, "--root", "LAUNCHER_TEST_UNSET_VAR", "/d");
        assert_eq!(
            r(&w(&["launcher", "--root", "/x", "ps"])),
            PathBuf::from("/x")
        );
        assert_eq!(r(&w(&["launcher", "--root=/y", "ps"])), PathBuf::from("/y"));
        assert_eq!(r(&w(&["launcher", "ps"])), PathBuf::from("/d"));
    }
}
