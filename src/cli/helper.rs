//! `mount.s3cryptfs`: the helper mount(8) runs for `mount -t s3cryptfs` and for /etc/fstab
//! lines of type `s3cryptfs` (the binary answers to that name when installed as a symlink).
//!
//! Command line, as mount(8) passes it: `mount.s3cryptfs SOURCE DIR [-sfnv] [-o OPTS]
//! [-t TYPE]`. SOURCE is the store URL, or any name when `-o config=PATH` supplies `[store]
//! url` (the name then becomes the source shown in the mount table, so that `mount -a` and
//! systemd recognise the mount as the fstab line's). The options are translated into an
//! `s3cryptfs mount` command line, parsed by the same clap definitions, and mounted in the
//! background: the helper returns once the mount answers.
//!
//! - helper options naming flags: `config=`, `key_file=`, `passphrase_file=`, `log_file=`,
//!   `log_level=`, `staging_dir=`, `metadata_ttl=`, `block_cache_mib=`, `memory_limit=`,
//!   and for s3://
//!   stores `endpoint=`, `region=`, `path_style`, `sse=`, `sse_kms_key_id=`,
//!   `sse_c_key_file=`;
//! - mount options: everything `s3cryptfs mount -o` takes (`ro`, `rw`, `allow_other`,
//!   `uid=`, `noexec`, ...);
//! - options for mount(8) or systemd, accepted and ignored: `_netdev`, `nofail`, `noauto`,
//!   `auto`, `user`, `users`, `nouser`, `owner`, `group`, `defaults`, `user=NAME`,
//!   `comment=`, `x-*` (e.g. `x-systemd.automount`), and the atime variants (the mount
//!   keeps no atime anyway);
//! - `-f` (fake) does everything except mounting and unlocking the vault; `-s` (sloppy)
//!   drops unknown options with a warning instead of failing; `-v` prints the translated
//!   command; `-n` is accepted (there is no mtab to write).
//!
//! This file parses and translates; the front (`app::helper`) runs the result. Exit status
//! follows mount(8): 0 mounted, 1 bad command line, options or config, 32 mount failure
//! (including a wrong key), each with a message on stderr (`app::exit`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::{MountSection, apply_mount_option};

/// The names the binary answers to as a mount helper: `mount -t s3cryptfs` runs the first;
/// `-t fuse.s3cryptfs` looks for the second before falling back to mount.fuse.
pub const HELPER_NAMES: [&str; 2] = ["mount.s3cryptfs", "mount.fuse.s3cryptfs"];

/// `mount.s3cryptfs --help`.
pub const USAGE: &str = "\
Usage: mount.s3cryptfs SOURCE MOUNTPOINT [-sfnv] [-o OPTION[,OPTION...]]

Mount the s3cryptfs vault SOURCE (a store URL such as file:///srv/vault, or any name when
-o config=PATH names a config whose [store] url is set) on MOUNTPOINT. mount(8) runs this
for `mount -t s3cryptfs` and for /etc/fstab lines of type s3cryptfs. Returns once the mount
answers.

  -o OPTIONS  config=PATH, key_file=PATH, passphrase_file=PATH, log_file=PATH,
              log_level=LEVEL, staging_dir=DIR, metadata_ttl=SECS, block_cache_mib=MIB,
              memory_limit=SIZE, endpoint=URL, region=R, path_style, sse=MODE, sse_kms_key_id=ID,
              sse_c_key_file=PATH, accept_config_rollback, kms, kms_endpoint=URL,
              and every option of
              `s3cryptfs mount -o` (ro, rw, allow_other, uid=N, ...).
              _netdev, nofail, noauto, auto, user, users, defaults, comment=, x-* are
              accepted and ignored (they are for mount(8) and systemd).
  -f          fake: check everything, do not mount
  -s          sloppy: ignore unknown options
  -n          accepted and ignored (no mtab)
  -v          verbose: print the equivalent s3cryptfs mount command

Example /etc/fstab line:
  s3://bucket/vault  /mnt/vault  s3cryptfs  _netdev,nofail,config=/etc/s3cryptfs/vault.toml  0 0

Exit status: 0 mounted, 1 bad command line or config, 32 mount failure. See mount.s3cryptfs(8).";

/// Helper options that stand for a flag of `s3cryptfs mount`.
pub const HELPER_OPTIONS: &[(&str, &str)] = &[
    ("config", "--config"),
    ("key_file", "--key-file"),
    ("passphrase_file", "--passphrase-file"),
    ("log_file", "--log-file"),
    ("log_level", "--log-level"),
    ("staging_dir", "--staging-dir"),
    ("metadata_ttl", "--metadata-ttl"),
    ("block_cache_mib", "--block-cache-mib"),
    ("memory_limit", "--memory-limit"),
    ("endpoint", "--endpoint"),
    ("region", "--region"),
    ("sse", "--sse"),
    ("sse_kms_key_id", "--sse-kms-key-id"),
    ("sse_c_key_file", "--sse-c-key-file"),
    ("kms_endpoint", "--kms-endpoint"),
];

/// Helper options without a value that stand for a switch of `s3cryptfs mount`.
pub const HELPER_SWITCHES: &[(&str, &str)] = &[
    ("path_style", "--path-style"),
    ("accept_config_rollback", "--accept-config-rollback"),
    ("kms", "--kms"),
];

/// Options for mount(8), systemd or the kernel's atime handling: accepted, ignored.
const IGNORED: &[&str] = &[
    "_netdev",
    "nofail",
    "noauto",
    "auto",
    "user",
    "users",
    "nouser",
    "owner",
    "noowner",
    "group",
    "nogroup",
    "defaults",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
];

/// Whether an option is for mount(8) or systemd: `x-*` with or without a value, the names
/// of [`IGNORED`] without one, and `user=`, `comment=`, `helper=` with one.
fn is_ignored(name: &str, value: Option<&str>) -> bool {
    name.starts_with("x-")
        || name.starts_with("X-")
        || match value {
            None => IGNORED.contains(&name),
            Some(_) => matches!(name, "user" | "comment" | "helper"),
        }
}

/// Whether the binary was started under one of [`HELPER_NAMES`].
pub fn invoked_as_helper(argv0: &OsStr) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|name| HELPER_NAMES.iter().any(|h| OsStr::new(h) == name))
}

/// A parsed helper command line.
#[derive(Debug, PartialEq, Eq)]
pub enum HelperCommand {
    Mount(HelperArgs),
    Help,
    Version,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HelperArgs {
    pub source: String,
    pub mountpoint: PathBuf,
    /// `-f`: do everything but mount.
    pub fake: bool,
    /// `-s`: drop unknown options instead of failing.
    pub sloppy: bool,
    /// `-v`
    pub verbose: bool,
    /// Every `-o` value, in order (each may hold several options).
    pub options: Vec<String>,
}

/// Parse the arguments after argv[0], getopt style (`-sv`, `-o OPTS`, `-oOPTS`, options
/// before, between or after the two operands, `--` ending options).
pub fn parse_args(args: &[OsString]) -> Result<HelperCommand, String> {
    let mut parsed = HelperArgs::default();
    let mut operands: Vec<&OsString> = Vec::new();
    let mut i = 0;
    let utf8 = |a: &OsString, what: &str| -> Result<String, String> {
        a.to_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} {a:?} is not valid UTF-8"))
    };
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            operands.extend(&args[i..]);
            break;
        }
        if bytes == b"--help" {
            return Ok(HelperCommand::Help);
        }
        if bytes == b"--version" {
            return Ok(HelperCommand::Version);
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            operands.push(arg);
            continue;
        }
        let cluster = utf8(arg, "option")?;
        for (at, c) in cluster[1..].char_indices() {
            match c {
                's' => parsed.sloppy = true,
                'f' => parsed.fake = true,
                'n' => {}
                'v' => parsed.verbose = true,
                'h' => return Ok(HelperCommand::Help),
                'V' => return Ok(HelperCommand::Version),
                'o' | 't' | 'N' => {
                    let rest = &cluster[1 + at + 1..];
                    let value = if !rest.is_empty() {
                        rest.to_owned()
                    } else {
                        let next = args
                            .get(i)
                            .ok_or_else(|| format!("option -{c} needs a value"))?;
                        i += 1;
                        utf8(next, &format!("option -{c} value"))?
                    };
                    match c {
                        'o' => parsed.options.push(value),
                        't' => check_type(&value)?,
                        _ => {
                            return Err(format!(
                                "-N {value}: mounting in another namespace is not supported; \
                                 run mount.s3cryptfs inside that namespace (nsenter)"
                            ));
                        }
                    }
                    break;
                }
                other => {
                    return Err(format!(
                        "unknown option -{other}; usage: mount.s3cryptfs SOURCE MOUNTPOINT \
                         [-sfnv] [-o OPTIONS]"
                    ));
                }
            }
        }
    }
    match operands.as_slice() {
        [source, mountpoint] => {
            parsed.source = utf8(source, "source")?;
            parsed.mountpoint = PathBuf::from(mountpoint);
            Ok(HelperCommand::Mount(parsed))
        }
        _ => Err(format!(
            "expected SOURCE and MOUNTPOINT, got {} operand(s); usage: mount.s3cryptfs SOURCE \
             MOUNTPOINT [-sfnv] [-o OPTIONS]",
            operands.len()
        )),
    }
}

/// `-t TYPE`: mount(8) passes it for `fuse.s3cryptfs`; anything else is not ours.
fn check_type(fstype: &str) -> Result<(), String> {
    match fstype {
        "s3cryptfs" | "fuse.s3cryptfs" => Ok(()),
        other => Err(format!(
            "-t {other}: this helper mounts only s3cryptfs (or fuse.s3cryptfs)"
        )),
    }
}

/// A helper command line translated into `s3cryptfs mount` terms.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translation {
    /// The arguments of `s3cryptfs mount` (without `s3cryptfs mount` itself).
    pub mount_args: Vec<OsString>,
    /// Options for mount(8) or systemd that were ignored.
    pub ignored: Vec<String>,
    /// Unknown options dropped because of `-s`.
    pub dropped: Vec<String>,
}

/// Translate the options and operands (see the module docs).
pub fn translate(args: &HelperArgs) -> Result<Translation, String> {
    let mut t = Translation::default();
    let mut flags: Vec<OsString> = Vec::new();
    let mut mount_options: Vec<&str> = Vec::new();
    let mut has_config = false;
    let mut has_fsname = false;
    let all = args
        .options
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|o| !o.is_empty());
    for opt in all {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        if let Some((_, flag)) = HELPER_OPTIONS.iter().find(|(n, _)| *n == name) {
            let value = value.filter(|v| !v.is_empty()).ok_or_else(|| {
                format!("option {name} needs a value ({name}=...), as in config=/etc/s3cryptfs/vault.toml")
            })?;
            has_config |= name == "config";
            flags.push(OsString::from(flag));
            flags.push(OsString::from(value));
            continue;
        }
        if let (Some((_, flag)), None) = (HELPER_SWITCHES.iter().find(|(n, _)| *n == name), value) {
            flags.push(OsString::from(flag));
            continue;
        }
        if is_ignored(name, value) {
            t.ignored.push(opt.to_owned());
            continue;
        }
        match apply_mount_option(&mut MountSection::default(), opt) {
            Ok(()) => {
                has_fsname |= name == "fsname";
                mount_options.push(opt);
            }
            Err(_) if args.sloppy => t.dropped.push(opt.to_owned()),
            Err(e) => {
                return Err(format!(
                    "{e}; helper options: {}",
                    HELPER_OPTIONS
                        .iter()
                        .map(|(n, _)| format!("{n}="))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    let is_url = args.source.contains("://");
    let fsname;
    if !is_url {
        if !has_config {
            return Err(format!(
                "source {:?} is not a store URL (file:///path, s3://bucket/prefix): give the URL \
                 as the source, or name a config whose [store] url is set with -o \
                 config=/etc/s3cryptfs/NAME.toml",
                args.source
            ));
        }
        if !has_fsname && !args.source.contains(',') && !args.source.is_empty() {
            // Show the fstab source in the mount table, so that mount(8) and systemd match
            // the mount to its fstab line.
            fsname = format!("fsname={}", args.source);
            mount_options.push(&fsname);
        }
    }
    t.mount_args = flags;
    if !mount_options.is_empty() {
        t.mount_args.push("-o".into());
        t.mount_args.push(mount_options.join(",").into());
    }
    t.mount_args.push("--".into());
    if is_url {
        t.mount_args.push(args.source.clone().into());
    }
    t.mount_args.push(args.mountpoint.clone().into());
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: &[&str]) -> HelperArgs {
        match parse_args(&os(args)) {
            Ok(HelperCommand::Mount(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn strings(t: &Translation) -> Vec<String> {
        t.mount_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn names_it_answers_to() {
        assert!(invoked_as_helper(OsStr::new("/sbin/mount.s3cryptfs")));
        assert!(invoked_as_helper(OsStr::new("mount.s3cryptfs")));
        assert!(invoked_as_helper(OsStr::new(
            "/usr/sbin/mount.fuse.s3cryptfs"
        )));
        assert!(!invoked_as_helper(OsStr::new("/usr/bin/s3cryptfs")));
        assert!(!invoked_as_helper(OsStr::new("mount.s3cryptfs.old")));
    }

    #[test]
    fn mount8_command_lines_parse() {
        // Exactly as util-linux 2.38 execs a helper.
        let a = parse(&[
            "file:///srv/vault",
            "/mnt/vault",
            "-o",
            "rw,config=/etc/s3cryptfs/vault.toml",
        ]);
        assert_eq!(a.source, "file:///srv/vault");
        assert_eq!(a.mountpoint, PathBuf::from("/mnt/vault"));
        assert_eq!(a.options, ["rw,config=/etc/s3cryptfs/vault.toml"]);
        assert!(!a.fake && !a.sloppy && !a.verbose);

        let a = parse(&[
            "s3://b/p",
            "/m",
            "-s",
            "-f",
            "-n",
            "-v",
            "-o",
            "ro",
            "-t",
            "s3cryptfs",
        ]);
        assert!(a.fake && a.sloppy && a.verbose);
        let a = parse(&["-sfnv", "-oro,allow_other", "s3://b/p", "/m", "-o", "uid=5"]);
        assert!(a.fake && a.sloppy && a.verbose);
        assert_eq!(a.options, ["ro,allow_other", "uid=5"]);
        let a = parse(&["-vo", "ro", "--", "-weird-source://x", "/m"]);
        assert_eq!(
            (a.source.as_str(), a.options.as_slice()),
            ("-weird-source://x", &["ro".to_owned()][..])
        );
        assert_eq!(parse_args(&os(&["-h"])), Ok(HelperCommand::Help));
        assert_eq!(parse_args(&os(&["--version"])), Ok(HelperCommand::Version));
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for (args, needle) in [
            (&["file:///v"][..], "expected SOURCE and MOUNTPOINT"),
            (&["a://", "/m", "/x"], "got 3"),
            (&["a://", "/m", "-o"], "-o needs a value"),
            (&["a://", "/m", "-x"], "unknown option -x"),
            (&["a://", "/m", "-t", "ext4"], "only s3cryptfs"),
            (&["a://", "/m", "-N", "/proc/1/ns/mnt"], "namespace"),
        ] {
            let e = parse_args(&os(args)).expect_err("refused");
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        assert!(parse_args(&os(&["a://", "/m", "-t", "fuse.s3cryptfs"])).is_ok());
    }

    #[test]
    fn fstab_option_strings_translate() {
        // A typical fstab line's options, plus everything mount(8) and systemd add.
        let a = parse(&[
            "s3://bucket/vault",
            "/mnt/vault",
            "-o",
            "defaults,_netdev,nofail,noauto,x-systemd.automount,x-systemd.idle-timeout=5min,\
             x-systemd.requires=network-online.target,comment=x-gvfs-show,user,users,nouser,\
             user=alice,owner,relatime,rw,config=/etc/s3cryptfs/vault.toml,allow_other,\
             default_permissions,uid=1000,gid=100,file_mode=0640,noexec,nosuid,nodev",
        ]);
        let t = translate(&a).expect("translates");
        assert_eq!(
            strings(&t),
            [
                "--config",
                "/etc/s3cryptfs/vault.toml",
                "-o",
                "rw,allow_other,default_permissions,uid=1000,gid=100,file_mode=0640,noexec,\
                 nosuid,nodev",
                "--",
                "s3://bucket/vault",
                "/mnt/vault",
            ]
        );
        assert_eq!(
            t.ignored,
            [
                "defaults",
                "_netdev",
                "nofail",
                "noauto",
                "x-systemd.automount",
                "x-systemd.idle-timeout=5min",
                "x-systemd.requires=network-online.target",
                "comment=x-gvfs-show",
                "user",
                "users",
                "nouser",
                "user=alice",
                "owner",
                "relatime",
            ]
        );
        assert!(t.dropped.is_empty());
    }

    #[test]
    fn helper_options_become_flags() {
        let a = parse(&[
            "file:///srv/v",
            "/m",
            "-o",
            "ro,key_file=/k,log_file=/var/log/v.log,log_level=debug,staging_dir=/s,\
             metadata_ttl=5,block_cache_mib=64,endpoint=http://127.0.0.1:9000,region=eu-west-1,\
             path_style,sse=kms,sse_kms_key_id=alias/x,sse_c_key_file=/c.key,\
             accept_config_rollback",
        ]);
        assert_eq!(
            strings(&translate(&a).expect("translates")),
            [
                "--key-file",
                "/k",
                "--log-file",
                "/var/log/v.log",
                "--log-level",
                "debug",
                "--staging-dir",
                "/s",
                "--metadata-ttl",
                "5",
                "--block-cache-mib",
                "64",
                "--endpoint",
                "http://127.0.0.1:9000",
                "--region",
                "eu-west-1",
                "--path-style",
                "--sse",
                "kms",
                "--sse-kms-key-id",
                "alias/x",
                "--sse-c-key-file",
                "/c.key",
                "--accept-config-rollback",
                "-o",
                "ro",
                "--",
                "file:///srv/v",
                "/m",
            ]
        );
        // And clap accepts the result.
        let t = translate(&a).expect("translates");
        let argv = [OsString::from("s3cryptfs"), "mount".into()]
            .into_iter()
            .chain(t.mount_args);
        let cli = Cli::try_parse_from(argv).expect("clap accepts the translation");
        assert!(matches!(cli.command, Command::Mount(_)));
    }

    #[test]
    fn a_name_as_source_needs_a_config_and_becomes_the_fsname() {
        let a = parse(&["vault", "/m", "-o", "config=/etc/s3cryptfs/vault.toml"]);
        assert_eq!(
            strings(&translate(&a).expect("translates")),
            [
                "--config",
                "/etc/s3cryptfs/vault.toml",
                "-o",
                "fsname=vault",
                "--",
                "/m"
            ]
        );
        let a = parse(&["vault", "/m", "-o", "config=/c.toml,fsname=other"]);
        let t = translate(&a).expect("translates");
        assert!(strings(&t).contains(&"fsname=other".to_owned()));
        assert!(!strings(&t).contains(&"fsname=vault".to_owned()));
        let e = translate(&parse(&["vault", "/m", "-o", "ro"])).expect_err("no config");
        assert!(e.contains("not a store URL"), "{e}");
    }

    #[test]
    fn unknown_options_fail_unless_sloppy() {
        let a = parse(&["s3://b/p", "/m", "-o", "ro,bogus,compress=lz4"]);
        let e = translate(&a).expect_err("unknown");
        assert!(e.contains("bogus") && e.contains("config="), "{e}");
        let a = parse(&["-s", "s3://b/p", "/m", "-o", "ro,bogus,compress=lz4"]);
        let t = translate(&a).expect("sloppy");
        assert_eq!(t.dropped, ["bogus", "compress=lz4"]);
        assert!(strings(&t).contains(&"ro".to_owned()));
        for bad in ["config", "config=", "key_file", "uid=x"] {
            let a = parse(&["s3://b/p", "/m", "-o", bad]);
            assert!(translate(&a).is_err(), "{bad}");
        }
    }
}
