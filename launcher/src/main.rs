//! The `launcher` command: parses arguments, runs, prints errors once.
//! Exit status: 0 ok, 1 failure, 2 usage; `up` and `exec` pass statuses through.

use clap::Parser;
use std::io::Write;

/// musl's malloc maps and unmaps memory for a great many small allocations: parsing
/// `up`'s command line alone took ~100 mmap/munmap calls (0.7 ms of a pod's start).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    launcher::timings::start();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match launcher::cli::Cli::supervisor(&args) {
        Some(cli) => Ok(cli),
        None => {
            launcher::commands::complete::respond(); // a TAB in a shell: answers and exits
            launcher::cli::Cli::try_parse_from(&args)
        }
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's report, on one line: the problem and the accepted values.
            let text = e.render().to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("Usage:")
                })
                .collect();
            let msg = line.join(" ");
            let mut msg = msg.trim_start_matches("error: ").to_string();
            // Another tool's verb gets this tool's, not clap's nearest spelling.
            if let Some(clap::error::ContextValue::String(verb)) =
                e.get(clap::error::ContextKind::InvalidSubcommand)
            {
                if let Some(hint) = launcher::cli::verb_hint(verb) {
                    msg = format!("unknown command {verb:?}: {hint}");
                }
            }
            let _ = writeln!(std::io::stderr(), "launcher: {msg} (see launcher --help)");
            std::process::exit(2);
        }
    };
    launcher::timings::mark("arguments");
    let code = match launcher::run(cli) {
        Ok(code) => code,
        // The reader of our output is gone: end as SIGPIPE would, without a word.
        Err(e) if e.is::<launcher::commands::ClosedStdout>() => 141,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "launcher: {e:#}");
            if e.is::<launcher::commands::Usage>() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
