//! The application front: the one place where a command line becomes a running command and
//! its outcome an exit status.
//!
//! - `mod.rs`: the dispatcher. `s3cryptfs ...` is parsed by clap (`cli`), its settings and
//!   secret source resolved (`resolve`), and the command run: `init`, `mount`, `unmount`
//!   (`mount`) or a tool (`tools.rs` here, `crate::tools` there). Started as
//!   `mount.s3cryptfs`, the binary is the mount helper instead (`helper.rs`).
//! - `resolve.rs`: the one step from flags and config file to settings ([`crate::config`]'s
//!   `VaultSettings`, `MountSettings`) and a [`crate::vault::secret::SecretSource`]; the terminal
//!   prompt lives there, so nothing below the front touches the terminal for a secret.
//! - `error.rs`: [`AppError`], every command's error, and its message with the flag hints for
//!   store errors (`config::hints`).
//! - `exit.rs`: the exit statuses, one table, including mount(8)'s for the helper.
//! - `alloc.rs`: glibc's allocator tuned for few-MiB buffers (fewer arenas, a fixed mmap
//!   threshold), so freed buffers give their memory back.
//! - `harden.rs`: no core dumps (unless asked for) and no passphrase left in the environment.
//!
//! Below the front nothing sees clap structs or knows an exit status: `mount` and `tools`
//! take resolved settings and return their own errors.

mod alloc;
mod error;
pub mod exit;
mod harden;
mod helper;
mod ops;
mod resolve;
mod tools;

use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command, helper::invoked_as_helper};
use crate::mount;

pub use error::{AppError, AppResult, describe};
pub use ops::write_completions;
pub use resolve::{Detach, MountPlan, PASSPHRASE_ENV, new_secret_source, secret_source};

/// Run the program with its full argv (argv[0] included); returns the exit status.
pub fn main(argv: Vec<OsString>) -> i32 {
    // First, while the process has one thread: nothing else reads the environment yet. Core
    // dumps are suspended before the passphrase is in memory; resolving the config decides.
    alloc::tune();
    harden::suspend_core_dumps();
    resolve::keep_env_passphrase(harden::take_env_secret(PASSPHRASE_ENV));
    if argv.first().is_some_and(|a| invoked_as_helper(a)) {
        return helper::main(&argv);
    }
    // clap prints usage errors itself and exits with exit::USAGE (0 for --help/--version).
    let cli = Cli::parse_from(argv);
    match run(&cli) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("s3cryptfs: {}", describe(&e));
            exit::code(&e)
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: &Cli) -> AppResult<()> {
    match &cli.command {
        Command::Init(args) => {
            let (settings, secret, recovery) =
                resolve::init(args.config.as_deref(), &args.overrides(&cli.global))?;
            Ok(mount::init(
                &settings,
                &secret,
                recovery.as_ref(),
                !args.plain_names,
            )?)
        }
        Command::Mount(args) => {
            let plan = resolve::mount(&cli.global, args, Detach::AsAsked)?;
            Ok(mount::mount(
                &plan.settings,
                &plan.secret,
                plan.reload,
                exit::daemon_failure,
            )?)
        }
        Command::Unmount(args) => {
            mount::logging::init(cli.global.log_level.unwrap_or_default(), true);
            harden::apply(cli.global.allow_core_dumps);
            Ok(mount::unmount(
                &args.mountpoint,
                Duration::from_secs(args.timeout),
            )?)
        }
        Command::Status(args) => {
            mount::logging::init(cli.global.log_level.unwrap_or_default(), true);
            ops::status(args)
        }
        Command::Completions(args) => ops::completions(args.shell),
        Command::Tools(command) => tools::run(&cli.global, command),
    }
}
