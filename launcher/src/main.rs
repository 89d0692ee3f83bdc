//! The `launcher` command: parses arguments, runs, prints errors once.
//! Exit status: 0 ok, 1 failure, 2 usage; `up` and `exec` pass statuses through.

use clap::Parser;

fn main() {
    let cli = launcher::cli::Cli::parse();
    let code = match launcher::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("launcher: {e:#}");
            if e.is::<launcher::pod::Usage>() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
