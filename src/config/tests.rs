use super::*;

fn parse(text: &str) -> ConfigResult<MountConfig> {
    MountConfig::parse(text, Path::new("test.toml"))
}

#[test]
fn empty_config_has_defaults() {
    let c = parse("").expect("empty config");
    assert_eq!(c, MountConfig::default());
    assert_eq!(c.cache.metadata_ttl_secs, 1);
    assert_eq!(c.cache.block_cache_mib, 64);
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.sse.mode, SseMode::None);
}

#[test]
fn modes_are_octal_strings() {
    let c = parse("[mount]\nfile_mode = \"0640\"\ndir_mode = \"750\"\n").expect("modes");
    assert_eq!(c.mount.file_mode, Some(Mode(0o640)));
    assert_eq!(c.mount.dir_mode, Some(Mode(0o750)));
    let e = parse("[mount]\nfile_mode = 644\n").expect_err("integer mode");
    assert!(e.to_string().contains("file_mode"), "{e}");
    let e = parse("[mount]\nfile_mode = \"0999\"\n").expect_err("bad digits");
    assert!(e.to_string().contains("0999"), "{e}");
    assert!(Mode::parse("17777").is_err());
    assert!(Mode::parse("").is_err());
}

#[test]
fn mount_options_set_fields_and_flags() {
    let mut m = MountSection::default();
    apply_mount_option(
        &mut m,
        "ro,allow_other,uid=1000,gid=100,file_mode=0600,dir_mode=0700,fsname=vault,nodev",
    )
    .expect("options");
    apply_mount_option(
        &mut m,
        "_netdev,nofail,noauto,x-systemd.automount,defaults,dev",
    )
    .expect("ignored options");
    assert!(m.read_only && m.allow_other);
    assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
    assert_eq!(
        (m.file_mode, m.dir_mode),
        (Some(Mode(0o600)), Some(Mode(0o700)))
    );
    assert_eq!(m.fsname.as_deref(), Some("vault"));
    assert_eq!(m.options, vec!["dev".to_owned()], "dev overrides nodev");
    apply_mount_option(&mut m, "rw,allow_root").expect("rw");
    assert!(!m.read_only && m.allow_root && !m.allow_other);
}

#[test]
fn bad_mount_options_are_named() {
    for (opt, needle) in [
        ("frobnicate", "unknown mount option"),
        ("uid=abc", "not a number"),
        ("uid", "needs a value"),
        ("ro=1", "takes no value"),
        ("file_mode=rwx", "permission mode"),
        ("fsname=", "needs a name"),
    ] {
        let e = apply_mount_option(&mut MountSection::default(), opt)
            .expect_err(opt)
            .to_string();
        assert!(e.contains(needle), "{opt}: {e}");
        let name = opt.split('=').next().unwrap_or(opt);
        assert!(e.contains(name), "{opt}: {e}");
    }
}

#[test]
fn sse_modes_are_checked_against_the_store_and_each_other() {
    parse("[sse]\nmode = \"kms\"\n").expect("kms alone");
    parse("[store]\nurl = \"s3://b/p\"\n[sse]\nsse = \"s3\"\n").expect("s3 on s3://");
    let e = parse("[store]\nurl = \"file:///v\"\n[sse]\nmode = \"kms\"\n").expect_err("kms");
    assert!(e.to_string().contains("sse.mode"), "{e}");
    assert!(e.to_string().contains("SSE applies to s3:// stores"), "{e}");
    let e = parse("[sse]\nmode = \"c\"\n").expect_err("c without keys");
    assert!(e.to_string().contains("sse.sse_c_key_files"), "{e}");
    let e = parse("[sse]\nmode = \"bogus\"\n").expect_err("bogus");
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = parse("[sse]\nsse_c_key_files = [\"/k\"]\n").expect_err("sse-c");
    assert!(e.to_string().contains("sse.sse_c_key_files"), "{e}");
    let e = parse("[sse]\nsse_kms_key_id = \"k\"\n").expect_err("kms id");
    assert!(e.to_string().contains("sse.sse_kms_key_id"), "{e}");
}

#[test]
fn exclusive_and_invalid_values() {
    let e = parse("[encryption]\nkey_file = \"/a\"\npassphrase_file = \"/b\"\n")
        .expect_err("both secrets");
    assert!(e.to_string().contains("not both"), "{e}");
    let e = parse("[encryption]\nblock_size = 1000\n").expect_err("block size");
    assert!(e.to_string().contains("encryption.block_size"), "{e}");
    let e = parse("[mount]\nallow_other = true\nallow_root = true\n").expect_err("acl");
    assert!(e.to_string().contains("exclusive"), "{e}");
    let e = parse("[store]\nurl = \"http://x\"\n").expect_err("url");
    assert!(e.to_string().contains("store.url"), "{e}");
    let e = parse("[mount]\noptions = [\"bogus\"]\n").expect_err("options");
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn memory_limit_is_a_size_with_a_floor() {
    assert_eq!(parse("").expect("empty").cache.memory_limit.0, 64 << 20);
    for (text, bytes) in [
        ("\"256M\"", 256u64 << 20),
        ("\"1G\"", 1 << 30),
        ("\"48MiB\"", 48 << 20),
        ("\"65536k\"", 64 << 20),
        ("33554432", 32 << 20),
    ] {
        let c = parse(&format!("[cache]\nmemory_limit = {text}\n")).expect(text);
        assert_eq!(c.cache.memory_limit.0, bytes, "{text}");
    }
    for bad in ["\"lots\"", "\"16M\"", "-5", "\"2T\"", "\"99999999999999T\""] {
        let e = parse(&format!("[cache]\nmemory_limit = {bad}\n")).expect_err(bad);
        assert!(e.to_string().contains("memory_limit"), "{bad}: {e}");
    }
    assert_eq!(ByteSize::parse("512").expect("bytes"), ByteSize(512));
    assert!(ByteSize::parse("").is_err());
    assert!(ByteSize::parse("1.5G").is_err());
}

#[test]
fn settings_need_url_and_mountpoint() {
    let c = MountConfig::default();
    assert!(
        c.mount_settings()
            .expect_err("no url")
            .to_string()
            .contains("STORE_URL")
    );
    let c = parse("[store]\nurl = \"mem://x\"\n").expect("url");
    assert!(
        c.mount_settings()
            .expect_err("no mp")
            .to_string()
            .contains("MOUNTPOINT")
    );
    let init = c.init_settings().expect("init settings");
    assert_eq!(init.block_size, DEFAULT_BLOCK_SIZE);
}
