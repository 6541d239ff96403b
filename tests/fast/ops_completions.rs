//! Shell completions: `s3cryptfs completions bash|zsh|fish` prints clap_complete's script for
//! the current command line; the checked-in copies in `completions/` (which the Debian package
//! installs) are exactly that, and each passes its shell's syntax check (`bash -n`, `zsh -n`,
//! `fish --no-execute`; scripts/test.sh installs zsh and fish). Regenerate the copies with
//! `S3CRYPTFS_REGEN_COMPLETIONS=1 cargo test --test integration ops_completions`.

use std::path::{Path, PathBuf};
use std::process::Command;

use s3cryptfs::app::write_completions;
use s3cryptfs::cli::CompletionShell;

use crate::common::cli::run_cli;

const REGEN_ENV: &str = "S3CRYPTFS_REGEN_COMPLETIONS";

/// Each shell, its checked-in file, and the syntax check (program and flags before the file).
const SHELLS: [(CompletionShell, &str, &str, &[&str]); 3] = [
    (CompletionShell::Bash, "bash", "s3cryptfs.bash", &["-n"]),
    (CompletionShell::Zsh, "zsh", "_s3cryptfs", &["-n"]),
    (
        CompletionShell::Fish,
        "fish",
        "s3cryptfs.fish",
        &["--no-execute"],
    ),
];

fn file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(name)
}

#[test]
fn completions_are_current_and_pass_the_shells_syntax_checks() {
    for (shell, program, name, check) in SHELLS {
        let out = run_cli(&["completions", program], &[]);
        out.assert_ok();
        let mut expected = Vec::new();
        write_completions(shell, &mut expected);
        assert_eq!(
            out.stdout.as_bytes(),
            expected,
            "{program}: the command's output"
        );
        for sub in ["mount", "unmount", "status", "completions", "verify"] {
            assert!(out.stdout.contains(sub), "{program} completes no {sub}");
        }
        let path = file(name);
        if std::env::var_os(REGEN_ENV).is_some() {
            std::fs::write(&path, &expected).expect("write the completion file");
        }
        let checked_in = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; set {REGEN_ENV}=1 to write it", path.display()));
        assert!(
            checked_in == expected,
            "{} is not what `s3cryptfs completions {program}` prints; regenerate with {REGEN_ENV}=1",
            path.display()
        );
        let syntax = Command::new(program)
            .args(check)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): install it (scripts/test.sh does)")
            });
        assert!(
            syntax.status.success(),
            "{program} {check:?} {}: {}",
            path.display(),
            String::from_utf8_lossy(&syntax.stderr)
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run_cli(&["completions", "tcsh"], &[]);
    out.assert_failed()
        .assert_stderr_has(&["bash", "zsh", "fish"]);
    assert_eq!(out.status.code(), Some(2));
}
