//! `s3cryptfs`: parse the command line, run it, map the outcome to an exit status.
//!
//! Started as `mount.s3cryptfs` (a symlink mount(8) finds in /sbin), the binary is the
//! mount helper instead: see `s3cryptfs::mount::helper`.
//!
//! Exit status: 0 success, 1 error, 2 bad command line or config, 3 wrong key
//! (see `s3cryptfs::mount::MountError::exit_code`); the helper uses mount(8)'s 1 and 32.

use clap::Parser;

use s3cryptfs::cli::{Cli, Command};
use s3cryptfs::mount::{self, helper};
use s3cryptfs::tools;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.first().is_some_and(|a| helper::invoked_as_helper(a)) {
        std::process::exit(helper::main(&argv));
    }
    // clap prints usage errors itself and exits with status 2 (0 for --help/--version).
    let cli = Cli::parse_from(argv);
    if let Command::Tools(command) = &cli.command {
        if let Err(err) = tools::run(&cli.global, command) {
            eprintln!("s3cryptfs: {}", mount::error_chain(&err));
            std::process::exit(err.exit_code());
        }
        return;
    }
    if let Err(err) = mount::run(cli) {
        eprintln!("s3cryptfs: {}", mount::error_chain(&err));
        std::process::exit(err.exit_code());
    }
}
