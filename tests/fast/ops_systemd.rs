//! The systemd units in `packaging/systemd/`: they pass `systemd-analyze verify`, and the mount
//! unit is notify-typed without a mount namespace of its own. (The daemon's side of the notify
//! protocol mounts, so it is in the FUSE tier: `fuse::ops_systemd`.)
//!
//! systemd need not run (no PID 1 systemd in a container): `systemd-analyze verify` works
//! offline. It checks that every `ExecStart=` binary exists, so it runs on copies of the units
//! whose `/usr/bin/s3cryptfs` and `/usr/bin/s3cryptfs-backup` point at the built binary and
//! `scripts/backup.sh`, and with `--man=no` (the man pages are not installed).
//! `scripts/package-deb.sh --install-check` verifies the installed units as they are, man pages
//! included.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::cli::bin;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd")
}

fn unit_text(name: &str) -> String {
    std::fs::read_to_string(units_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = tempfile::Builder::new()
        .prefix("s3cryptfs-units-")
        .tempdir()
        .expect("temp dir");
    let backup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/backup.sh");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(units_dir())
        .expect("packaging/systemd")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).expect("read unit");
        let text = text
            .replace("/usr/bin/s3cryptfs-backup", &backup.display().to_string())
            .replace("/usr/bin/s3cryptfs", &bin().display().to_string());
        std::fs::write(dir.path().join(&name), text).expect("write unit");
        names.push(name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "s3cryptfs-backup@.service",
            "s3cryptfs-backup@.timer",
            "s3cryptfs@.service"
        ]
    );
    // Templates are verified through an instance.
    let instances: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.path().join(n.replace("@.", "@test.")))
        .collect();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&instances)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): install the systemd package (scripts/test.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about other units (the host's) are not ours to fix.
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("s3cryptfs")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify failed ({}):\n{text}",
        out.status
    );
}

#[test]
fn the_mount_unit_is_notify_typed_and_namespace_free() {
    let unit = unit_text("s3cryptfs@.service");
    let settings: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for needed in [
        "Type=notify",
        "ExecStart=/usr/bin/s3cryptfs mount -f --config /etc/s3cryptfs/%i.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "After=network-online.target",
        "Wants=network-online.target",
        "DeviceAllow=/dev/fuse rw",
        "NoNewPrivileges=yes",
        // A core dump of the daemon would hold the vault's keys.
        "LimitCORE=0",
    ] {
        assert!(
            settings.contains(&needed),
            "s3cryptfs@.service lacks {needed}"
        );
    }
    // Each of these gives the service its own mount namespace, where its FUSE mount would be
    // invisible to everyone else.
    for forbidden in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateMounts",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "InaccessiblePaths",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectProc",
        "TemporaryFileSystem",
        "BindPaths",
        "PrivateNetwork",
        "DynamicUser",
    ] {
        assert!(
            !settings
                .iter()
                .any(|s| s.starts_with(&format!("{forbidden}="))),
            "s3cryptfs@.service sets {forbidden}=, which puts the mount in a private mount \
             namespace"
        );
    }
}

#[test]
fn the_backup_unit_dumps_no_core() {
    // rsync reads plaintext from the mount: a core dump would put file contents on disk.
    let unit = unit_text("s3cryptfs-backup@.service");
    assert!(
        unit.lines().map(str::trim).any(|l| l == "LimitCORE=0"),
        "s3cryptfs-backup@.service lacks LimitCORE=0"
    );
}
