//! Parsing of whole `s3cryptfs` command lines: the top-level commands (`cli.rs`) and the tools
//! (`tools.rs`). Kept beside `cli.rs` rather than inside `tools.rs` so that `tools.rs` never
//! names [`Cli`](super::Cli), which is built from it: the import graph stays one-way.

use super::*;
use crate::config::LogLevel;
use clap::CommandFactory;
use std::path::Path;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("s3cryptfs").chain(args.iter().copied()))
}

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn the_fixed_contract_parses() {
    let cli = parse(&["init", "--key-file", "/k", "file:///v"]).expect("init");
    let Command::Init(a) = cli.command else {
        panic!("not init")
    };
    assert_eq!(a.keys.key_file, Some(PathBuf::from("/k")));
    assert_eq!(a.store_url.as_deref(), Some("file:///v"));

    let cli = parse(&[
        "mount",
        "--passphrase-file",
        "/p",
        "--config",
        "/c.toml",
        "-f",
        "-o",
        "ro,uid=5",
        "-o",
        "allow_other",
        "file:///v",
        "/mnt",
    ])
    .expect("mount");
    let Command::Mount(a) = cli.command else {
        panic!("not mount")
    };
    assert!(a.foreground);
    assert_eq!(a.options, vec!["ro,uid=5", "allow_other"]);
    assert_eq!(a.config, Some(PathBuf::from("/c.toml")));
    let o = a.overrides(&cli.global);
    assert_eq!(o.store_url.as_deref(), Some("file:///v"));
    assert_eq!(o.mountpoint, Some(PathBuf::from("/mnt")));

    let cli = parse(&["unmount", "/mnt"]).expect("unmount");
    assert!(matches!(cli.command, Command::Unmount(ref u) if u.mountpoint == Path::new("/mnt")));
}

#[test]
fn key_file_and_passphrase_file_conflict() {
    let e = parse(&[
        "mount",
        "--key-file",
        "/k",
        "--passphrase-file",
        "/p",
        "mem://",
        "/m",
    ])
    .expect_err("conflict");
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn a_single_positional_is_url_or_mountpoint() {
    let cli = parse(&["mount", "/mnt/x"]).expect("mount");
    let Command::Mount(a) = &cli.command else {
        panic!("not mount")
    };
    let o = a.overrides(&cli.global);
    assert_eq!(
        (o.store_url, o.mountpoint),
        (None, Some(PathBuf::from("/mnt/x")))
    );
    let cli = parse(&["mount", "mem://x"]).expect("mount");
    let Command::Mount(a) = &cli.command else {
        panic!("not mount")
    };
    let o = a.overrides(&cli.global);
    assert_eq!(
        (o.store_url.as_deref(), o.mountpoint),
        (Some("mem://x"), None)
    );
}

#[test]
fn log_level_is_global_and_checked() {
    let cli = parse(&["unmount", "/m", "--log-level", "debug"]).expect("global flag");
    assert_eq!(cli.global.log_level, Some(LogLevel::Debug));
    assert!(parse(&["--log-level", "loud", "unmount", "/m"]).is_err());
}

#[test]
fn only_implemented_subcommands_exist() {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "init",
            "mount",
            "unmount",
            "status",
            "completions",
            "key",
            "verify",
            "upgrade",
            "ls",
            "cat",
            "get",
            "put",
            "doctor",
            "cleanup"
        ]
    );
    assert!(parse(&["rotate"]).is_err());
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for args in [
        &["mount", "--file-mode", "rwx", "mem://", "/m"][..],
        &["mount", "--block-cache-mib", "0", "mem://", "/m"],
        &["mount", "--memory-limit", "lots", "mem://", "/m"],
        &["mount", "--memory-limit", "-1M", "mem://", "/m"],
        &["mount", "--sse", "bogus", "mem://", "/m"],
        &["init", "--block-size", "big", "mem://"],
    ] {
        assert!(parse(args).is_err(), "{args:?}");
    }
}

/// The tool subcommands, parsed through the whole [`Cli`].
mod tools {
    use std::path::PathBuf;

    use clap::Parser;

    use super::super::tools::{KeyCommand, ToolCommand};
    use super::super::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ToolCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("s3cryptfs").chain(args.iter().copied()))?;
        match cli.command {
            Command::Tools(t) => Ok(t),
            other => panic!("not a tool command: {other:?}"),
        }
    }

    #[test]
    fn the_fixed_contract_parses() {
        let ToolCommand::Key(KeyCommand::Rotate(r)) = parse(&[
            "key",
            "rotate",
            "--rewrap",
            "--yes",
            "--key-file",
            "/k",
            "file:///v",
        ])
        .expect("rotate") else {
            panic!("not rotate");
        };
        assert!(r.rewrap && r.yes && !r.resume && r.retire.is_none());
        assert_eq!(r.store.store_url.as_deref(), Some("file:///v"));
        assert_eq!(r.parallel, 16);
        let ToolCommand::Key(KeyCommand::Passwd(p)) = parse(&[
            "key",
            "passwd",
            "--passphrase-file",
            "/old",
            "--new-passphrase-file",
            "/new",
            "file:///v",
        ])
        .expect("passwd") else {
            panic!("not passwd");
        };
        assert_eq!(p.new_passphrase_file, Some(PathBuf::from("/new")));
        for args in [
            &["key", "list", "file:///v"][..],
            &["key", "add", "--new-key-file", "/n", "file:///v"],
            &["key", "add", "--new-passphrase-file", "/n", "file:///v"],
            &["key", "remove", "--slot", "1", "file:///v"],
            &["key", "rotate", "--retire", "1", "file:///v"],
            &["verify", "--deep", "--json", "file:///v", "some/dir"],
            &["ls", "file:///v"],
            &["ls", "-l", "file:///v", "docs"],
            &["cat", "file:///v", "a", "b"],
            &["get", "file:///v", "/", "/tmp/out"],
            &["get", "--plain", "file:///backup", "/", "/tmp/out"],
            &["put", "file:///v", "/tmp/in", "dest"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let ToolCommand::Verify(v) = parse(&["verify", "file:///v", "p"]).expect("verify") else {
            panic!("not verify");
        };
        assert_eq!(v.path.as_deref(), Some("p"));
    }

    #[test]
    fn keys_are_never_arguments_and_bad_combinations_fail() {
        for args in [
            &[
                "key",
                "add",
                "--new-key-file",
                "/a",
                "--new-passphrase-file",
                "/b",
                "file:///v",
            ][..],
            &["key", "rotate", "--resume", "file:///v"],
            &["key", "rotate", "--parallel", "0", "file:///v"],
            &["key", "remove", "file:///v"],
            &["key", "passwd", "--passphrase", "x", "file:///v"],
            &["cat", "file:///v"],
            &["get", "file:///v", "/"],
            &["put", "--plain", "file:///v", "/a", "b"],
            &["verify", "--key", "00", "file:///v"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}

#[test]
fn memory_limit_takes_sizes_and_wins_over_the_config() {
    let cli = parse(&["mount", "--memory-limit", "256M", "mem://", "/m"]).expect("mount");
    let Command::Mount(a) = cli.command else {
        panic!("not mount")
    };
    let o = a.overrides(&cli.global);
    assert_eq!(o.memory_limit, Some(crate::config::ByteSize(256 << 20)));
    let file =
        crate::config::MountConfig::parse("[cache]\nmemory_limit = \"1G\"\n", Path::new("c.toml"))
            .expect("config");
    assert_eq!(file.cache.memory_limit.0, 1 << 30);
    let merged = file.merge(&o).expect("merge");
    assert_eq!(merged.cache.memory_limit.0, 256 << 20);
    // Too small is refused at the merge, naming the field.
    let cli = parse(&["mount", "--memory-limit", "1M", "mem://", "/m"]).expect("parses");
    let Command::Mount(a) = cli.command else {
        panic!("not mount")
    };
    let e = crate::config::MountConfig::default()
        .merge(&a.overrides(&cli.global))
        .expect_err("too small");
    assert!(e.to_string().contains("cache.memory_limit"), "{e}");
}
