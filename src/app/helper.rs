//! `mount.s3cryptfs`, run: the command line mount(8) passes is parsed and translated into an
//! `s3cryptfs mount` command line (`cli::helper`), which is parsed by the same clap
//! definitions, resolved like any mount and mounted in the background. Exit statuses follow
//! mount(8) (`exit::mount8_code`).

use std::ffi::OsString;

use clap::Parser;

use super::error::{AppError, AppResult, describe};
use super::exit;
use super::resolve::{self, Detach};
use crate::cli::helper::{HelperCommand, USAGE, parse_args, translate};
use crate::cli::{Cli, Command};
use crate::mount::{self, MountError};

/// Run the helper with the full argv (argv[0] included); returns the exit status.
pub fn main(argv: &[OsString]) -> i32 {
    match run(argv.get(1..).unwrap_or_default()) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("mount.s3cryptfs: {}", describe(&e));
            exit::mount8_code(&e)
        }
    }
}

fn run(args: &[OsString]) -> AppResult<()> {
    let args = match parse_args(args).map_err(AppError::Usage)? {
        HelperCommand::Help => {
            println!("{USAGE}");
            return Ok(());
        }
        HelperCommand::Version => {
            println!("mount.s3cryptfs (s3cryptfs) {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        HelperCommand::Mount(a) => a,
    };
    let t = translate(&args).map_err(AppError::Usage)?;
    if !t.dropped.is_empty() {
        eprintln!(
            "mount.s3cryptfs: ignoring unknown options (-s): {}",
            t.dropped.join(",")
        );
    }
    if args.verbose {
        if !t.ignored.is_empty() {
            eprintln!(
                "mount.s3cryptfs: options for mount(8)/systemd, ignored: {}",
                t.ignored.join(",")
            );
        }
        let shown: Vec<String> = t
            .mount_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        eprintln!("mount.s3cryptfs: s3cryptfs mount {}", shown.join(" "));
    }
    let argv = [OsString::from("s3cryptfs"), OsString::from("mount")]
        .into_iter()
        .chain(t.mount_args);
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        // clap's first line names the problem; its usage lines are those of `s3cryptfs mount`.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        AppError::Usage(first.trim_start_matches("error: ").to_owned())
    })?;
    let Command::Mount(mount_args) = &cli.command else {
        return Err(MountError::Other(
            "internal error: the translated command is not `mount`".to_owned(),
        )
        .into());
    };
    let plan = resolve::mount(&cli.global, mount_args, Detach::Always)?;
    if args.fake {
        mount::check_mountpoint(&plan.settings.mountpoint)?;
        if args.verbose {
            eprintln!(
                "mount.s3cryptfs: -f: would mount {} at {}",
                plan.settings.store_url,
                plan.settings.mountpoint.display()
            );
        }
        return Ok(());
    }
    Ok(mount::mount(
        &plan.settings,
        &plan.secret,
        plan.reload,
        exit::daemon_failure,
    )?)
}
