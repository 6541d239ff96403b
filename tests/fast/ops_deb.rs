//! The Debian package's asset list (`[package.metadata.deb]` in Cargo.toml): every source
//! exists, the package has what the issue asks for (binary, helper symlink, units, man pages,
//! example config), and the dpkg-deb fallback of `scripts/package-deb.sh` reads exactly the
//! list cargo-deb reads. Building and installing the package is `scripts/package-deb.sh
//! --fast --install-check`, which CI runs (it needs root and changes the system).

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One asset as both readers see it: ("file", source, dest, mode) or ("link", dest, target, "").
type Asset = (String, String, String, String);

/// The asset list as cargo-deb reads it, from the TOML.
fn assets_from_toml() -> Vec<Asset> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("read Cargo.toml");
    let manifest: toml::Value = toml::from_str(&text).expect("Cargo.toml parses");
    let deb = manifest
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("deb"))
        .expect("[package.metadata.deb]");
    let assets = deb
        .get("assets")
        .and_then(|a| a.as_array())
        .expect("assets list");
    let s = |v: &toml::Value| v.as_str().expect("a string").to_owned();
    assets
        .iter()
        .map(|a| match a {
            toml::Value::Array(parts) => {
                assert_eq!(parts.len(), 3, "asset {a}: [source, dest, mode]");
                ("file".to_owned(), s(&parts[0]), s(&parts[1]), s(&parts[2]))
            }
            toml::Value::Table(t) => (
                "link".to_owned(),
                s(t.get("dest").expect("dest")),
                s(t.get("link_name").expect("link_name")),
                String::new(),
            ),
            other => panic!("unexpected asset {other}"),
        })
        .collect()
}

/// The asset list as `scripts/package-deb.sh --list-assets` (the dpkg-deb fallback) reads it.
fn assets_from_script() -> Vec<Asset> {
    let out = Command::new("bash")
        .arg(root().join("scripts/package-deb.sh"))
        .arg("--list-assets")
        .output()
        .expect("run scripts/package-deb.sh --list-assets");
    assert!(
        out.status.success(),
        "package-deb.sh --list-assets failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["file", src, dest, mode] => (
                    "file".into(),
                    src.to_string(),
                    dest.to_string(),
                    mode.to_string(),
                ),
                ["link", dest, target] => (
                    "link".into(),
                    dest.to_string(),
                    target.to_string(),
                    String::new(),
                ),
                _ => panic!("bad line from --list-assets: {line:?}"),
            }
        })
        .collect()
}

#[test]
fn the_fallback_reads_the_same_assets_as_cargo_deb() {
    assert_eq!(
        assets_from_script(),
        assets_from_toml(),
        "scripts/package-deb.sh parses [package.metadata.deb] assets differently from TOML: keep \
         one asset per line in Cargo.toml"
    );
}

#[test]
fn every_asset_exists_and_the_package_is_complete() {
    let assets = assets_from_toml();
    for (kind, src, _, mode) in &assets {
        if kind != "file" || src.starts_with("target/release/") {
            continue;
        }
        assert!(
            u32::from_str_radix(mode, 8).is_ok(),
            "asset {src}: mode {mode:?} is not octal"
        );
        if src.contains('*') {
            let (dir, pattern) = src.rsplit_once('/').expect("a directory");
            let suffix = pattern.trim_start_matches('*');
            let matches = std::fs::read_dir(root().join(dir))
                .expect("asset dir")
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count();
            assert!(matches > 0, "asset {src} matches nothing");
        } else {
            assert!(root().join(src).is_file(), "asset {src} does not exist");
        }
    }
    let has = |dest: &str| {
        assets.iter().any(|(kind, src, d, _)| {
            let d = if kind == "link" { src } else { d };
            d == dest || (dest.starts_with(d.as_str()) && d.ends_with('/'))
        })
    };
    for dest in [
        "usr/bin/s3cryptfs",
        "sbin/mount.s3cryptfs",
        "usr/bin/s3cryptfs-backup",
        "lib/systemd/system/s3cryptfs@.service",
        "lib/systemd/system/s3cryptfs-backup@.timer",
        "usr/share/man/man1/s3cryptfs.1",
        "usr/share/man/man5/s3cryptfs.toml.5",
        "usr/share/man/man8/mount.s3cryptfs.8",
        "usr/share/doc/s3cryptfs/examples/s3cryptfs.example.toml",
        "usr/share/bash-completion/completions/s3cryptfs",
        "usr/share/zsh/vendor-completions/_s3cryptfs",
        "usr/share/fish/vendor_completions.d/s3cryptfs.fish",
    ] {
        assert!(has(dest), "the package does not install {dest}");
    }
    assert!(
        assets.contains(&(
            "link".into(),
            "sbin/mount.s3cryptfs".into(),
            "/usr/bin/s3cryptfs".into(),
            String::new()
        )),
        "mount.s3cryptfs must be a symlink to /usr/bin/s3cryptfs (mount(8) looks in /sbin)"
    );
    for script in [
        "packaging/deb/postinst",
        "packaging/deb/postrm",
        "scripts/backup.sh",
    ] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root().join(script))
                .expect(script)
                .permissions(),
        );
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
}
