//! `s3cryptfs`: parse the command line, run it, map the outcome to an exit status.
//!
//! Exit status: 0 success, 1 error, 2 bad command line or config, 3 wrong key
//! (see `s3cryptfs::mount::MountError::exit_code`).

use clap::Parser;

use s3cryptfs::cli::Cli;
use s3cryptfs::mount;

fn main() {
    // clap prints usage errors itself and exits with status 2 (0 for --help/--version).
    let cli = Cli::parse();
    if let Err(err) = mount::run(cli) {
        eprintln!("s3cryptfs: {}", mount::error_chain(&err));
        std::process::exit(err.exit_code());
    }
}
