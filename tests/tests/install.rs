//! Installing: `make install` / `make uninstall` (scripts/install.sh) and `make deb`
//! (scripts/deb.sh), run on the binaries under test. Host tier only: the scripts and dpkg
//! are not in the VM.

use pod_tests::{bin, bin_dir, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every regular file under `dir`, relative to it, sorted (none when `dir` is gone).
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut visit: Vec<PathBuf> = dir
        .exists()
        .then(|| dir.to_path_buf())
        .into_iter()
        .collect();
    while let Some(d) = visit.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                visit.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The man pages `launcher man` writes: one per visible command, and launcher.1.
fn man_pages() -> Vec<String> {
    let dir = TempDir::new("man");
    run(Command::new(bin("launcher")).arg("man").arg(dir.path()));
    files(dir.path())
}

#[test]
fn make_install_needs_only_the_toolchain() {
    // The test bed (apt's qemu, podman, tmux; PyPI's validator) is `make deps`, which
    // install, uninstall and deb must not run.
    for target in ["install", "uninstall", "deb"] {
        let plan = run(Command::new("make")
            .args(["-n", "-C"])
            .arg(repo())
            .arg(target));
        for word in ["apt-get", "pip install", "venv"] {
            assert!(
                !plan.contains(word),
                "make {target} would run {word}:\n{plan}"
            );
        }
    }
}

#[test]
fn install_puts_binaries_pages_and_completions_under_prefix_and_uninstall_takes_them_away() {
    let dest = TempDir::new("destdir");
    let script = repo().join("scripts/install.sh");
    run(Command::new(&script)
        .arg("install")
        .arg(bin_dir())
        .arg(dest.path())
        .arg("/usr/local"));
    let installed = files(dest.path());
    let mut expected: Vec<String> = [
        "bin/launcher",
        "bin/pause",
        "share/bash-completion/completions/launcher",
        "share/fish/vendor_completions.d/launcher.fish",
        "share/zsh/site-functions/_launcher",
    ]
    .iter()
    .map(|f| format!("usr/local/{f}"))
    .collect();
    expected.extend(
        man_pages()
            .iter()
            .map(|p| format!("usr/local/share/man/man1/{p}")),
    );
    expected.sort();
    assert_eq!(installed, expected);
    assert!(expected.iter().any(|f| f.ends_with("launcher-up.1")));

    let launcher = dest.path().join("usr/local/bin/launcher");
    let version = run(Command::new(&launcher).arg("--version"));
    assert!(version.starts_with("launcher "), "{version}");
    // The bash completion registers itself for `launcher` when sourced.
    let completion = dest
        .path()
        .join("usr/local/share/bash-completion/completions/launcher");
    let registered = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(format!(
            "source '{}' && complete -p launcher",
            completion.display()
        )));
    assert!(registered.contains("launcher"), "{registered}");

    run(Command::new(&script)
        .arg("uninstall")
        .arg(bin_dir())
        .arg(dest.path())
        .arg("/usr/local"));
    assert_eq!(files(dest.path()), Vec::<String>::new());
}

#[test]
fn the_debian_package_installs_with_dpkg_and_removes_cleanly() {
    let out = TempDir::new("deb");
    let deb = run(Command::new(repo().join("scripts/deb.sh"))
        .arg(bin_dir())
        .arg(out.path()));
    let deb = PathBuf::from(deb.trim());
    assert!(
        deb.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_amd64.deb")),
        "{deb:?}"
    );
    let control = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    for field in [
        "Package: pod-launcher",
        "Architecture: amd64",
        "Recommends: containernetworking-plugins",
    ] {
        assert!(control.contains(field), "{field} missing:\n{control}");
    }
    // Static binaries: the package depends on nothing.
    assert!(!control.contains("Depends:"), "{control}");

    // apt accepts it on this Debian (simulated: nothing of the host changes) ...
    let simulated = run(Command::new("apt-get")
        .args(["install", "-s", "--no-install-recommends"])
        .arg(&deb));
    assert!(simulated.contains("Inst pod-launcher"), "{simulated}");

    // ... and dpkg installs it for real into a root of the test's own, then removes it.
    let root = TempDir::new("dpkg-root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("dpkg dirs");
    }
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").expect("status");
    let dpkg = |args: &[&str]| {
        run(Command::new("dpkg")
            .arg(format!("--root={}", root.path().display()))
            .args(args))
    };
    dpkg(&["-i", deb.to_str().expect("utf-8")]);
    let usr = root.path().join("usr");
    let mut installed = files(&usr);
    installed.retain(|f| !f.starts_with("share/doc/"));
    let mut expected: Vec<String> = [
        "bin/launcher",
        "bin/pause",
        "share/bash-completion/completions/launcher",
        "share/fish/vendor_completions.d/launcher.fish",
        "share/zsh/vendor-completions/_launcher",
    ]
    .iter()
    .map(|f| f.to_string())
    .collect();
    expected.extend(man_pages().iter().map(|p| format!("share/man/man1/{p}.gz")));
    expected.sort();
    assert_eq!(installed, expected);
    let version = run(Command::new(usr.join("bin/launcher")).arg("--version"));
    assert!(version.starts_with("launcher "), "{version}");
    let pause = run(Command::new(usr.join("bin/pause")).arg("--version"));
    assert!(pause.starts_with("pause "), "{pause}");

    dpkg(&["-r", "pod-launcher"]);
    assert_eq!(files(&usr), Vec::<String>::new());
}
