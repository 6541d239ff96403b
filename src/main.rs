//! `s3cryptfs` (and `mount.s3cryptfs`, the same binary under the name mount(8) looks for):
//! the front in `s3cryptfs::app` parses, resolves, runs and picks the exit status.

fn main() {
    std::process::exit(s3cryptfs::app::main(std::env::args_os().collect()));
}
