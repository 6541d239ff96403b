//! `status` and `completions`: the operator's commands that touch no vault.

use std::io::Write;

use clap::CommandFactory;

use super::error::{AppError, AppResult};
use crate::cli::{Cli, CompletionShell, StatusArgs};
use crate::mount::{self, MountError};

/// `s3cryptfs status`: print each mount's report (text, or JSON with `--json`); an error when
/// a mount does not answer or any upload is failing, after printing everything.
pub fn status(args: &StatusArgs) -> AppResult<()> {
    let answers = mount::status(args.mountpoint.as_deref(), args.socket.as_deref())?;
    let single = args.mountpoint.is_some() || args.socket.is_some();
    let mut out = std::io::stdout().lock();
    let mut problems = Vec::new();
    let mut reports = Vec::new();
    for (mp, answer) in answers {
        match answer {
            Ok(s) => {
                if s.failing() {
                    let files: Vec<&str> =
                        s.fs.pending
                            .iter()
                            .filter(|p| p.last_error.is_some())
                            .map(|p| p.path.as_str())
                            .collect();
                    problems.push(format!(
                        "uploads are failing at {}: {}",
                        s.mountpoint,
                        files.join(", ")
                    ));
                }
                reports.push(s);
            }
            Err(e) => problems.push(format!("{} does not answer: {e}", mp.display())),
        }
    }
    let written = if args.json {
        let json = if single && reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        }
        .map_err(|e| AppError::Usage(format!("cannot encode the status: {e}")))?;
        writeln!(out, "{json}")
    } else if reports.is_empty() && problems.is_empty() {
        writeln!(out, "no s3cryptfs mount of this user is running")
    } else {
        reports
            .iter()
            .try_for_each(|s| write!(out, "{}", mount::render_status(s)))
    };
    written.map_err(AppError::io("writing the status"))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MountError::Other(problems.join("; ")).into())
    }
}

/// `s3cryptfs completions SHELL`: the completion script on stdout.
pub fn completions(shell: CompletionShell) -> AppResult<()> {
    let mut out = Vec::new();
    write_completions(shell, &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .map_err(AppError::io("writing the completions"))
}

/// The completion script for `shell`.
pub fn write_completions(shell: CompletionShell, out: &mut Vec<u8>) {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "s3cryptfs", out);
}
