//! The config file: the shipped example, rejected configs (each error names the field or
//! file), and command-line values overriding config values.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use s3cryptfs::cli::{Cli, Command};
use s3cryptfs::config::{ConfigError, LogLevel, Mode, MountConfig, Overrides, SseMode};
use s3cryptfs::store::StoreUrl;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/s3cryptfs.example.toml")
}

fn parse(text: &str) -> Result<MountConfig, ConfigError> {
    MountConfig::parse(text, Path::new("/etc/s3cryptfs/test.toml"))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// The overrides `s3cryptfs mount ARGS...` produces.
fn mount_overrides(args: &[&str]) -> Overrides {
    let cli = Cli::try_parse_from(["s3cryptfs", "mount"].iter().chain(args))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match &cli.command {
        Command::Mount(m) => m.overrides(&cli.global),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn example_config_loads_with_documented_defaults() {
    let c = MountConfig::load(&example_path()).expect("example config");
    assert_eq!(c, MountConfig::default(), "the example sets only defaults");
    assert_eq!(c.store.url, None);
    assert_eq!(c.sse.mode, SseMode::None);
    assert!(!c.mount.foreground && !c.mount.allow_other && !c.mount.read_only);
    assert!(c.mount.options.is_empty());
    assert_eq!(c.cache.metadata_ttl_secs, 1);
    assert_eq!(c.cache.block_cache_mib, 64);
    assert_eq!(c.cache.staging_dir, None);
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.logging.file, None);
}

/// Every commented-out field of the example is a real field with a valid example value.
#[test]
fn example_config_commented_fields_are_valid() {
    let text = std::fs::read_to_string(example_path()).expect("read example");
    // Fields that cannot be combined with others (the s3:// settings with the example's
    // file:// URL, SSE fields with mode "none").
    let refused = [
        "passphrase_file",
        "sse_kms_key_id",
        "sse_c_key_files",
        "endpoint",
        "region",
        "path_style",
    ];
    let mut uncommented = 0;
    let text: String = text
        .lines()
        .map(|line| {
            let Some(field) = line.strip_prefix("# ") else {
                return format!("{line}\n");
            };
            let is_field = field
                .split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if is_field && !refused.iter().any(|r| field.starts_with(r)) {
                uncommented += 1;
                format!("{field}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(
        uncommented >= 11,
        "only {uncommented} commented fields found"
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.store.url.as_deref(), Some("file:///srv/s3cryptfs/vault"));
    assert_eq!(c.mount.file_mode, Some(Mode(0o644)));
    assert_eq!(c.encryption.block_size, Some(65536));
    let s = c.mount_settings().expect("settings");
    assert_eq!(s.mountpoint, PathBuf::from("/mnt/vault"));
    assert_eq!(s.fsname, "vault");
    assert_eq!(
        s.store_url,
        StoreUrl::File {
            path: "/srv/s3cryptfs/vault".into()
        }
    );
}

#[test]
fn unknown_fields_are_named() {
    let e = error("[mount]\nmountpoin = \"/mnt\"\n");
    assert!(e.contains("mountpoin"), "{e}");
    assert!(e.contains("/etc/s3cryptfs/test.toml"), "{e}");
    let e = error("[bucket]\nurl = \"file:///x\"\n");
    assert!(e.contains("bucket"), "{e}");
    let e = error("verbose = true\n");
    assert!(e.contains("verbose"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e = error("[cache]\nblock_cache_mib = \"lots\"\n");
    assert!(e.contains("block_cache_mib"), "{e}");
    let e = error("[mount]\nforeground = \"yes\"\n");
    assert!(e.contains("foreground"), "{e}");
    let e = error("[mount]\nfile_mode = 644\n");
    assert!(e.contains("file_mode") && e.contains("\"0644\""), "{e}");
    let e = error("[logging]\nlevel = \"loud\"\n");
    assert!(e.contains("loud"), "{e}");
}

#[test]
fn bad_values_are_named() {
    assert_eq!(
        error("[cache]\nblock_cache_mib = 0\n"),
        "config: field cache.block_cache_mib: must be > 0"
    );
    let e = error("[encryption]\nblock_size = 12345\n");
    assert!(e.starts_with("config: field encryption.block_size:"), "{e}");
    let e = error("[store]\nurl = \"/srv/vault\"\n");
    assert!(
        e.contains("store.url") && e.contains("file:///srv/vault"),
        "{e}"
    );
    let e = error("[store]\nurl = \"file:///srv/v\"\n[sse]\nmode = \"s3\"\n");
    assert!(
        e.contains("sse.mode") && e.contains("SSE applies to s3:// stores"),
        "{e}"
    );
    let e = error("[sse]\nsse = \"c\"\n");
    assert!(e.contains("sse.sse_c_key_files"), "{e}");
    let e = error("[sse]\nsse_kms_key_id = \"k\"\n");
    assert!(e.contains("sse.sse_kms_key_id") && e.contains("kms"), "{e}");
    let e = error("[store]\nurl = \"mem://x\"\nendpoint = \"http://h:9000\"\n");
    assert!(e.contains("store.endpoint") && e.contains("s3://"), "{e}");
    let e = error("[store]\nendpoint = \"h:9000\"\n");
    assert!(e.contains("store.endpoint") && e.contains("http://"), "{e}");
    for ok in [
        "[store]\nurl = \"s3://b/p\"\nendpoint = \"http://h:9000\"\nregion = \"eu-west-1\"\npath_style = true\n[sse]\nsse = \"kms\"\n",
        "[store]\nurl = \"s3://b\"\n[sse]\nmode = \"kms\"\nsse_kms_key_id = \"arn:k\"\n",
        "[store]\nurl = \"s3://b\"\n[sse]\nsse = \"c\"\nsse_c_key_files = [\"/k1\", \"/k2\"]\n",
    ] {
        MountConfig::parse(ok, Path::new("t.toml")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let e = error("[mount]\noptions = [\"ro,frob\"]\n");
    assert!(e.contains("frob"), "{e}");
}

#[test]
fn readable_secret_files_are_refused_with_file_and_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("vault.key");
    std::fs::write(&key, [7u8; 32]).expect("write key");
    for (field, mode, word) in [
        ("key_file", 0o644, "world-readable"),
        ("passphrase_file", 0o640, "group-readable"),
    ] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let e = error(&format!("[encryption]\n{field} = \"{}\"\n", key.display()));
        assert!(e.contains(&format!("encryption.{field}")), "{e}");
        assert!(e.contains(&key.display().to_string()), "{e}");
        assert!(
            e.contains(&format!("{mode:04o}")) && e.contains(word),
            "{e}"
        );
        assert!(e.contains("chmod 600"), "{e}");
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    parse(&format!("[encryption]\nkey_file = \"{}\"\n", key.display())).expect("private key");
}

#[test]
fn linked_or_foreign_secret_files_are_refused_with_field_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("vault.key");
    std::fs::write(&key, [7u8; 32]).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&key, &link).expect("symlink");
    for field in ["key_file", "passphrase_file"] {
        let e = error(&format!("[encryption]\n{field} = \"{}\"\n", link.display()));
        assert!(e.contains(&format!("encryption.{field}")), "{e}");
        assert!(
            e.contains(&link.display().to_string()) && e.contains("symbolic link"),
            "{e}"
        );
    }
    // The tests run as root, who can give the file to nobody (65534).
    std::os::unix::fs::chown(&key, Some(65534), None).expect("chown (the tests run as root)");
    let e = error(&format!("[encryption]\nkey_file = \"{}\"\n", key.display()));
    assert!(e.contains("encryption.key_file"), "{e}");
    assert!(
        e.contains("owned by uid 65534") && e.contains("chown"),
        "{e}"
    );
    std::os::unix::fs::chown(&key, Some(0), None).expect("chown back");
    parse(&format!("[encryption]\nkey_file = \"{}\"\n", key.display())).expect("root's key");
}

#[test]
fn sse_c_over_plain_http_needs_an_explicit_allowance() {
    let config = |endpoint: &str, allow: &str| {
        format!(
            "[store]\nurl = \"s3://b/p\"\nendpoint = \"{endpoint}\"\n[sse]\nsse = \"c\"\n\
             sse_c_key_files = [\"/k\"]\n{allow}"
        )
    };
    let e = error(&config("http://127.0.0.1:9000", ""));
    assert!(e.starts_with("config: field store.endpoint:"), "{e}");
    assert!(
        e.contains("sse.allow_sse_c_over_http") && e.contains("--allow-sse-c-over-http"),
        "{e}"
    );
    let e = error(&config("HTTP://h", "allow_sse_c_over_http = false\n"));
    assert!(e.contains("store.endpoint"), "{e}");
    for ok in [
        config("http://127.0.0.1:9000", "allow_sse_c_over_http = true\n"),
        config("https://s3.example.com", ""),
    ] {
        parse(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    // SSE-S3 and SSE-KMS send no key: plain http is theirs to choose.
    parse("[store]\nurl = \"s3://b\"\nendpoint = \"http://h\"\n[sse]\nsse = \"s3\"\n")
        .expect("SSE-S3 over http");

    // The same from the command line: refused, then allowed by the flag.
    let flags = [
        "--endpoint",
        "http://127.0.0.1:9000",
        "--sse",
        "c",
        "--sse-c-key-file",
        "/k",
        "s3://b/p",
        "/mnt",
    ];
    let e = MountConfig::default()
        .merge(&mount_overrides(&flags))
        .expect_err("SSE-C over http")
        .to_string();
    assert!(
        e.contains("store.endpoint") && e.contains("--allow-sse-c-over-http"),
        "{e}"
    );
    let mut allowed = vec!["--allow-sse-c-over-http"];
    allowed.extend(flags);
    let c = MountConfig::default()
        .merge(&mount_overrides(&allowed))
        .expect("allowed by the flag");
    assert!(c.sse.allow_sse_c_over_http);
    assert!(c.store_options().allow_sse_c_over_http);
}

#[test]
fn core_dumps_stay_off_unless_asked() {
    assert!(!MountConfig::default().logging.allow_core_dumps);
    let c = parse("[logging]\nallow_core_dumps = true\n").expect("config");
    assert!(c.logging.allow_core_dumps);
    let c = MountConfig::default()
        .merge(&mount_overrides(&[
            "--allow-core-dumps",
            "file:///v",
            "/mnt",
        ]))
        .expect("flag");
    assert!(c.logging.allow_core_dumps);
    let c = MountConfig::default()
        .merge(&mount_overrides(&["file:///v", "/mnt"]))
        .expect("no flag");
    assert!(!c.logging.allow_core_dumps);
}

#[test]
fn missing_config_file_names_it() {
    let e = MountConfig::load(Path::new("/nonexistent/s3cryptfs.toml"))
        .expect_err("missing")
        .to_string();
    assert!(e.starts_with("config /nonexistent/s3cryptfs.toml:"), "{e}");
}

const FILE_CONFIG: &str = r#"
[store]
url = "file:///srv/from-config"
[encryption]
key_file = "/nonexistent/config.key"
[mount]
mountpoint = "/mnt/from-config"
uid = 1
gid = 10
read_only = false
options = ["uid=2", "noexec"]
[cache]
metadata_ttl_secs = 5
block_cache_mib = 64
[logging]
level = "warn"
"#;

#[test]
fn command_line_overrides_config() {
    let file = parse(FILE_CONFIG).expect("config");

    // Nothing on the command line: the file's options list beats its fields.
    let c = file.clone().merge(&mount_overrides(&[])).expect("merge");
    let s = c.mount_settings().expect("settings");
    assert_eq!(s.uid, 2, "[mount] options beat [mount] uid");
    assert_eq!(s.gid, 10);
    assert_eq!(s.kernel_flags, ["noexec"]);
    assert_eq!(s.metadata_ttl, Duration::from_secs(5));
    assert_eq!(s.block_cache_bytes, 64 << 20);
    assert_eq!(s.log_level, LogLevel::Warn);
    assert_eq!(s.key_file, Some(PathBuf::from("/nonexistent/config.key")));
    assert!(!s.read_only);

    // -o beats the file; flags beat -o.
    let c = file
        .clone()
        .merge(&mount_overrides(&[
            "-o",
            "ro,uid=3,gid=30,exec",
            "--gid",
            "40",
            "--metadata-ttl",
            "9",
            "--log-level",
            "debug",
            "--passphrase-file",
            "/nonexistent/cli.pass",
            "mem://cli",
        ]))
        .expect("merge");
    let s = c.mount_settings().expect("settings");
    assert_eq!(s.store_url, StoreUrl::Memory { name: "cli".into() });
    assert_eq!(s.mountpoint, PathBuf::from("/mnt/from-config"));
    assert_eq!((s.uid, s.gid), (3, 40));
    assert!(s.read_only);
    assert_eq!(s.kernel_flags, ["exec"], "exec replaces noexec");
    assert_eq!(s.metadata_ttl, Duration::from_secs(9));
    assert_eq!(s.block_cache_bytes, 64 << 20);
    assert_eq!(s.log_level, LogLevel::Debug);
    // A secret named on the command line replaces the config's, of either kind.
    assert_eq!(s.key_file, None);
    assert_eq!(
        s.passphrase_file,
        Some(PathBuf::from("/nonexistent/cli.pass"))
    );

    // Both positionals override both config values.
    let c = file
        .merge(&mount_overrides(&["file:///srv/cli", "/mnt/cli"]))
        .expect("merge");
    let s = c.mount_settings().expect("settings");
    assert_eq!(s.mountpoint, PathBuf::from("/mnt/cli"));
    assert_eq!(s.fsname, "file:///srv/cli");
}

#[test]
fn command_line_values_are_checked_like_config_values() {
    let e = MountConfig::default()
        .merge(&mount_overrides(&["-o", "frobnicate", "mem://x", "/m"]))
        .expect_err("unknown -o")
        .to_string();
    assert!(
        e.contains("frobnicate") && e.contains("unknown mount option"),
        "{e}"
    );
    let e = MountConfig::default()
        .merge(&mount_overrides(&["--sse", "kms", "mem://x", "/m"]))
        .expect_err("sse kms")
        .to_string();
    assert!(e.contains("SSE applies to s3:// stores"), "{e}");
}
