//! The `launcher` command: parses arguments, runs, prints errors once.
//! Exit status: 0 ok, 1 failure, 2 usage; `up` and `exec` pass statuses through.

use clap::Parser;

fn main() {
    let cli = match launcher::cli::Cli::try_parse() {
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
            eprintln!(
                "launcher: {} (see launcher --help)",
                line.join(" ").trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
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
