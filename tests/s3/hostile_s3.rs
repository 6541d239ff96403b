//! The bucket's owner as the adversary (issue 13), over HTTP: each attack of the issue made as
//! the owner would make it, with a plain S3 client against moto (or, for what moto cannot be
//! made to answer, through `common::tamper`'s proxy), then seen through a fresh mount and
//! through the tools (`ls`, `cat`, `verify`, `get`). Every attack gives EIO for its name (with
//! a log line naming the object) or a clear refusal; never forged attributes, wrong bytes, a
//! hang, or a write outside a `get` destination. `tests/fast/hostile_bucket.rs` makes the same
//! attacks on the memory store; docs/FORMAT.md §7 maps each one to its tests.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use aws_sdk_s3::types::MetadataDirective;
use s3cryptfs::crypto::format::HEADER_LEN;

use super::fuse_s3::moto;
use crate::common::s3vault::{S3Target, S3Vault, block_on};
use crate::common::tamper::{Pages, Tamper, TamperProxy};

/// moto behind a [`TamperProxy`]: the vault's every request goes through it.
fn tampered_moto() -> (S3Target, TamperProxy) {
    let base = moto();
    let proxy = TamperProxy::start(base.endpoint.trim_start_matches("http://"));
    let target = S3Target {
        endpoint: proxy.endpoint(),
        ..base
    };
    (target, proxy)
}

/// The bucket as its owner sees it: raw objects under `vault/`.
struct Owner<'a>(&'a S3Vault);

impl Owner<'_> {
    fn key(name: &str) -> String {
        format!("vault/{name}")
    }

    async fn metadata(&self, name: &str) -> HashMap<String, String> {
        let head = self
            .0
            .client
            .head_object()
            .bucket(&self.0.bucket)
            .key(Self::key(name))
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {name}: {e:?}"));
        head.metadata().cloned().unwrap_or_default()
    }

    async fn body(&self, name: &str) -> Vec<u8> {
        let got = self
            .0
            .client
            .get_object()
            .bucket(&self.0.bucket)
            .key(Self::key(name))
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e:?}"));
        got.body.collect().await.expect("body").to_vec()
    }

    /// PutObject of `body` with `metadata` at `key` (a whole key, `vault/` included).
    async fn put_key(&self, key: &str, body: Vec<u8>, metadata: HashMap<String, String>) {
        self.0
            .client
            .put_object()
            .bucket(&self.0.bucket)
            .key(key)
            .set_metadata(Some(metadata))
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    async fn put(&self, name: &str, body: Vec<u8>, metadata: HashMap<String, String>) {
        self.put_key(&Self::key(name), body, metadata).await;
    }

    /// CopyObject of `from` onto `to`; `metadata` replaces the metadata when given.
    async fn copy(&self, from: &str, to: &str, metadata: Option<HashMap<String, String>>) {
        let mut req = self
            .0
            .client
            .copy_object()
            .bucket(&self.0.bucket)
            .key(to)
            .copy_source(format!("{}/{from}", self.0.bucket));
        if let Some(m) = metadata {
            req = req
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(m));
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("copy {from} to {to}: {e:?}"));
    }

    async fn config(&self) -> Vec<u8> {
        self.body(".s3cryptfs/config").await
    }

    async fn put_config(&self, bytes: Vec<u8>) {
        self.put(".s3cryptfs/config", bytes, HashMap::new()).await;
    }
}

/// What the owner does to one object.
enum Edit {
    /// Replace its metadata by plaintext attributes (s3fs style): the record goes.
    ReplaceMeta(&'static [(&'static str, &'static str)]),
    /// Add plaintext attributes beside the record.
    AddMeta(&'static [(&'static str, &'static str)]),
    /// Put another object's metadata (its record) on this body.
    MetaOf(&'static str),
    /// Put another object's body under this metadata.
    BodyOf(&'static str),
    /// Copy another object (body and metadata) over this name.
    CopyFrom(&'static str),
    /// Cut or extend the body to this many bytes (zeros), same metadata.
    Resize(u64),
    /// The body extended by this many bytes.
    Grow(u64),
    /// Put back the metadata (record) this name had before its last write.
    OlderRecord,
}

/// What a reader must see afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    /// EIO at stat (lookup), and at read.
    Eio,
    /// The attributes authenticate (same size), the content does not: EIO at read.
    ReadEio,
    /// The forgery is ignored: the true type, mode, owner and content.
    Unchanged,
}

struct Attack {
    name: &'static str,
    symlink: bool,
    edit: Edit,
    seen: Seen,
}

const H: u64 = HEADER_LEN as u64;
/// One full block of the default 64 KiB block size, sealed.
const ONE_BLOCK: u64 = H + 65536 + 16;
/// Plaintext of the files whose sizes are forged: more than one block.
const SIZED_LEN: usize = 70_000;

fn attacks() -> Vec<Attack> {
    use Edit::*;
    use Seen::*;
    let file = |name, edit, seen| Attack {
        name,
        symlink: false,
        edit,
        seen,
    };
    let link = |name, edit, seen| Attack {
        name,
        symlink: true,
        edit,
        seen,
    };
    vec![
        // Forged mode/uid and setuid bits.
        file(
            "setuid",
            ReplaceMeta(&[("mode", "35309"), ("uid", "0"), ("gid", "0")]),
            Eio,
        ),
        file(
            "setuid-beside-record",
            AddMeta(&[("mode", "35309"), ("uid", "4242"), ("gid", "4242")]),
            Unchanged,
        ),
        // File <-> symlink.
        file("file-as-symlink", AddMeta(&[("mode", "41471")]), Unchanged),
        file("symlink-record-on-file", MetaOf("link"), Eio),
        link("file-record-on-symlink", MetaOf("source"), Eio),
        // A 0-byte body, and every class of size no valid object of this record has: shorter
        // than a header, a header with less than a tag, between one full block and two, and
        // a size some ciphertext has but not this record's.
        file("emptied", Resize(0), Eio),
        file("size-1", Resize(1), Eio),
        file("size-header-less-1", Resize(H - 1), Eio),
        file("size-header", Resize(H), Eio),
        file("size-header-and-15", Resize(H + 15), Eio),
        file("size-block-and-1", Resize(ONE_BLOCK + 1), Eio),
        file("size-block-and-16", Resize(ONE_BLOCK + 16), Eio),
        file("size-valid-not-recorded", Grow(1), Eio),
        // Objects swapped between names, records transplanted between objects.
        file("victim", CopyFrom("source"), Eio),
        file("transplant", MetaOf("source"), Eio),
        file("foreign-body", BodyOf("same-size"), ReadEio),
        // The record of an older version of the same file.
        file("older-record", OlderRecord, ReadEio),
        // A symlink object made huge (a readlink must not read it whole).
        link("huge-symlink", Grow(4 << 20), Eio),
    ]
}

/// The content each attacked file is written with (symlinks point at /etc/passwd).
fn content(name: &str) -> Vec<u8> {
    if name.starts_with("size-") {
        vec![b's'; SIZED_LEN]
    } else if name == "foreign-body" || name == "same-size" || name == "older-record" {
        format!("{name:>24}").into_bytes()
    } else {
        format!("the content of {name}").into_bytes()
    }
}

fn is_eio<T>(r: &std::io::Result<T>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EIO))
}

/// Every attack on objects, in one vault: the reader's view through a fresh mount, then
/// through `ls -l`, `cat`, `verify` and `get`.
#[test]
fn hostile_bucket_edits_over_http_give_eio() {
    let v = S3Vault::init_plain(moto(), "fuse-s3-hostile", &[]);
    let mut m = v.mount();
    let attacks = attacks();
    for name in ["intact", "source", "same-size"] {
        fs::write(m.path(name), content(name)).expect("write");
    }
    symlink("/etc/passwd", m.path("link")).expect("symlink");
    let owner = Owner(&v);
    let mut older = HashMap::new();
    for a in &attacks {
        if a.symlink {
            symlink("/etc/passwd", m.path(a.name)).expect("symlink");
        } else {
            fs::write(m.path(a.name), content(a.name)).expect("write");
        }
        if matches!(a.edit, Edit::OlderRecord) {
            older.insert(a.name, block_on(owner.metadata(a.name)));
            // Same size, other content.
            fs::write(m.path(a.name), format!("{:<24}", "second version")).expect("rewrite");
        }
    }
    let before: HashMap<&str, fs::Metadata> = attacks
        .iter()
        .map(|a| (a.name, fs::symlink_metadata(m.path(a.name)).expect("stat")))
        .collect();
    block_on(async {
        for a in &attacks {
            let key = Owner::key(a.name);
            match &a.edit {
                Edit::ReplaceMeta(kv) | Edit::AddMeta(kv) => {
                    let mut meta = match a.edit {
                        Edit::AddMeta(_) => owner.metadata(a.name).await,
                        _ => HashMap::new(),
                    };
                    meta.extend(kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
                    owner.copy(&key, &key, Some(meta)).await;
                }
                Edit::MetaOf(other) => {
                    let meta = owner.metadata(other).await;
                    owner.copy(&key, &key, Some(meta)).await;
                }
                Edit::BodyOf(other) => {
                    let meta = owner.metadata(a.name).await;
                    owner.put(a.name, owner.body(other).await, meta).await;
                }
                Edit::CopyFrom(other) => owner.copy(&Owner::key(other), &key, None).await,
                Edit::Resize(_) | Edit::Grow(_) => {
                    let meta = owner.metadata(a.name).await;
                    let mut body = owner.body(a.name).await;
                    let len = match a.edit {
                        Edit::Grow(n) => body.len() as u64 + n,
                        Edit::Resize(n) => n,
                        _ => unreachable!(),
                    };
                    body.resize(len as usize, 0);
                    owner.put(a.name, body, meta).await;
                }
                Edit::OlderRecord => {
                    owner.copy(&key, &key, Some(older[a.name].clone())).await;
                }
            }
        }
    });
    m.remount();

    // Through the mount.
    for a in &attacks {
        let path = m.path(a.name);
        let stat = fs::symlink_metadata(&path);
        let read = if a.symlink {
            fs::read_link(&path).map(|p| p.into_os_string().into_vec())
        } else {
            fs::read(&path)
        };
        match a.seen {
            Seen::Eio => {
                assert!(is_eio(&stat), "{}: stat gave {stat:?}, not EIO", a.name);
            }
            Seen::ReadEio => {
                let stat = stat.unwrap_or_else(|e| panic!("{}: stat: {e}", a.name));
                assert_eq!(stat.len(), content(a.name).len() as u64, "{}", a.name);
            }
            Seen::Unchanged => {
                let stat = stat.unwrap_or_else(|e| panic!("{}: stat: {e}", a.name));
                let was = &before[a.name];
                assert_eq!(
                    (
                        stat.mode(),
                        stat.uid(),
                        stat.gid(),
                        stat.file_type().is_file()
                    ),
                    (was.mode(), was.uid(), was.gid(), true),
                    "{}: the forged attributes show",
                    a.name
                );
                assert_eq!(stat.mode() & 0o7000, 0, "{}", a.name);
                assert_eq!(read.expect("read"), content(a.name), "{}", a.name);
                continue;
            }
        }
        assert!(
            is_eio(&read),
            "{}: read gave {:?}, not EIO",
            a.name,
            read.map(|b| b.len())
        );
    }
    let intact = fs::metadata(m.path("intact")).expect("intact file");
    assert_eq!(intact.mode() & 0o7000, 0);
    assert_eq!(
        fs::read(m.path("intact")).expect("read intact"),
        content("intact")
    );
    assert_eq!(
        fs::read(m.path("source")).expect("read source"),
        content("source")
    );
    let refused: Vec<&str> = attacks
        .iter()
        .filter(|a| a.seen != Seen::Unchanged)
        .map(|a| a.name)
        .collect();
    let log = m.log();
    for name in &refused {
        assert!(
            log.contains(&format!("vault/{name}")),
            "the log does not name vault/{name}:\n{log}"
        );
    }
    drop(m);

    // Through the tools.
    let verify = v.run(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", verify.describe());
    let said = format!("{}{}", verify.stdout, verify.stderr);
    for name in &refused {
        assert!(
            said.contains(&format!("vault/{name}:")) || said.contains(&format!("{name}:")),
            "verify does not name {name}: {}",
            verify.describe()
        );
    }
    assert!(!said.contains("intact:"), "{}", verify.describe());

    let ls = v.run_with(&["ls", "-l"], &["/"]);
    assert_eq!(ls.status.code(), Some(1), "{}", ls.describe());
    for line in ls.stdout.lines() {
        let (mode, name) = (
            line.split(' ').next().unwrap_or_default(),
            line.rsplit(' ').next().unwrap_or_default(),
        );
        assert!(!mode.contains(['s', 'S']), "a setuid bit shows: {line}");
        for a in attacks.iter().filter(|a| a.seen == Seen::Eio) {
            assert_ne!(name, a.name, "ls -l shows a refused object: {line}");
        }
    }
    for name in ["intact", "setuid-beside-record", "file-as-symlink"] {
        assert!(
            ls.stdout
                .lines()
                .any(|l| l.starts_with("-rw") && l.ends_with(name)),
            "{name}: {}",
            ls.describe()
        );
    }
    for a in attacks.iter().filter(|a| a.seen == Seen::Eio) {
        assert!(
            ls.stderr.contains(a.name),
            "ls -l does not report {}: {}",
            a.name,
            ls.describe()
        );
    }

    for a in attacks
        .iter()
        .filter(|a| a.seen != Seen::Unchanged && !a.symlink)
    {
        let cat = v.run_with(&["cat"], &[a.name]);
        assert_eq!(
            cat.status.code(),
            Some(1),
            "cat {}: {}",
            a.name,
            cat.describe()
        );
        assert_eq!(cat.stdout, "", "cat {} printed bytes", a.name);
        assert!(cat.stderr.contains(a.name), "{}", cat.describe());
    }

    let outer = tempfile::tempdir().expect("outer");
    let dest = outer.path().join("dest");
    let get = v.run_with(&["get"], &[Path::new("/"), &dest]);
    assert_eq!(get.status.code(), Some(1), "{}", get.describe());
    assert_eq!(
        fs::read_dir(outer.path()).expect("ls outer").count(),
        1,
        "get wrote beside its destination"
    );
    for a in &attacks {
        let restored = fs::symlink_metadata(dest.join(a.name));
        if a.seen == Seen::Unchanged {
            let restored = restored.expect("restored");
            assert!(restored.is_file(), "{}", a.name);
            assert_eq!(restored.mode() & 0o7000, 0, "{}", a.name);
            assert_eq!(fs::read(dest.join(a.name)).expect("read"), content(a.name));
        } else {
            assert!(
                restored.is_err(),
                "get restored the refused {}: {restored:?}",
                a.name
            );
            assert!(get.stderr.contains(a.name), "{}", get.describe());
        }
    }
    assert_eq!(
        fs::read(dest.join("intact")).expect("intact"),
        content("intact")
    );
    assert_eq!(
        fs::read_link(dest.join("link")).expect("link"),
        Path::new("/etc/passwd")
    );
}

/// Keys no name can come from: `..`, `.`, an empty segment (`//`), a key climbing out of the
/// vault, and a NUL byte (which only a forged listing can carry). They are skipped, with a
/// log line, in the mount and in `ls`; `get` restores the rest and writes nothing outside its
/// destination.
#[test]
fn hostile_listing_names_over_http_are_skipped() {
    let (target, proxy) = tampered_moto();
    let v = S3Vault::init_plain(target, "fuse-s3-hostile-names", &[]);
    let mut m = v.mount();
    fs::write(m.path("good"), b"good content").expect("write");
    fs::create_dir(m.path("sub")).expect("mkdir");
    fs::write(m.path("sub/inner"), b"inner content").expect("write");
    let owner = Owner(&v);
    let hostile = [
        "vault/..",
        "vault/.",
        "vault//x",
        "vault/../escape",
        "vault/sub/..",
        "vault/sub/../../escape2",
    ];
    block_on(async {
        let (body, meta) = (owner.body("good").await, owner.metadata("good").await);
        for key in hostile {
            owner.put_key(key, body.clone(), meta.clone()).await;
        }
    });
    let listed = block_on(v.keys());
    for key in hostile {
        assert!(
            listed.contains(&key.to_owned()),
            "moto holds {key}: {listed:?}"
        );
    }
    proxy.set(Tamper::ExtraKeys {
        prefix: "vault/".into(),
        keys: vec!["vault/nul&#0;name".into()],
    });
    m.remount();
    let mut names: Vec<String> = fs::read_dir(&m.mountpoint)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["good", "sub"]);
    let mut inside: Vec<String> = fs::read_dir(m.path("sub"))
        .expect("readdir sub")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort();
    assert_eq!(inside, ["inner"]);
    assert_eq!(fs::read(m.path("good")).expect("read"), b"good content");
    assert!(proxy.take_tampered() > 0, "the forged listing was not sent");
    let log = m.log();
    for shown in ["vault/..", "vault/.", "vault//", "vault/nul\\0name"] {
        assert!(log.contains(shown), "the log does not name {shown}:\n{log}");
    }
    drop(m);

    let ls = v.run_with(&["ls"], &["/"]);
    assert_eq!(ls.stdout, "good\nsub/\n", "{}", ls.describe());
    let outer = tempfile::tempdir().expect("outer");
    let dest = outer.path().join("a/dest");
    fs::create_dir_all(&dest).expect("dest");
    let get = v.run_with(&["get"], &[Path::new("/"), &dest]);
    get.assert_ok();
    let mut found = Vec::new();
    walk(outer.path(), outer.path(), &mut found);
    found.sort();
    assert_eq!(
        found,
        [
            "a",
            "a/dest",
            "a/dest/good",
            "a/dest/sub",
            "a/dest/sub/inner"
        ],
        "get wrote outside its destination or restored a hostile name"
    );
    assert!(proxy.take_tampered() > 0);
}

/// Every path below `dir`, relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).expect("readdir") {
        let path = e.expect("entry").path();
        out.push(
            path.strip_prefix(root)
                .expect("below")
                .to_string_lossy()
                .into_owned(),
        );
        if fs::symlink_metadata(&path).expect("lstat").is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Bodies longer than the range asked for, or without end, and listings without end: EIO in
/// the mount (with a log line naming the object or directory), a failing tool, no hang. Other
/// files and directories stay usable.
#[test]
fn hostile_bodies_and_endless_pagination_over_http_are_refused() {
    let (target, proxy) = tampered_moto();
    let v = S3Vault::init_plain(target, "fuse-s3-hostile-http", &[]);
    let mut m = v.mount();
    fs::write(m.path("big"), vec![7u8; 300_000]).expect("write");
    fs::write(m.path("small"), b"small content").expect("write");
    fs::create_dir(m.path("endless")).expect("mkdir");
    fs::write(m.path("endless/f"), b"f").expect("write");
    fs::create_dir(m.path("other")).expect("mkdir");
    fs::write(m.path("other/g"), b"g").expect("write");

    let bodies = [
        Tamper::LongBody {
            key: "vault/big".into(),
            extra: 1 << 20,
        },
        Tamper::EndlessBody {
            key: "vault/big".into(),
        },
    ];
    for t in bodies {
        proxy.set(t.clone());
        m.remount();
        let read = fs::read(m.path("big"));
        assert!(
            is_eio(&read),
            "{t:?}: read gave {:?}",
            read.map(|b| b.len())
        );
        assert_eq!(fs::read(m.path("small")).expect("small"), b"small content");
        let log = m.log();
        assert!(
            log.contains("vault/big") && log.contains("longer than"),
            "{t:?}: the log does not name vault/big:\n{log}"
        );
        let cat = v.run_with(&["cat"], &["big"]);
        assert_eq!(cat.status.code(), Some(1), "{t:?}: {}", cat.describe());
        assert!(cat.stdout.is_empty(), "{t:?}: cat printed bytes");
        assert!(cat.stderr.contains("longer than"), "{}", cat.describe());
        assert!(proxy.take_tampered() > 0, "{t:?} was never sent");
    }

    for (pages, why) in [
        (Pages::SameToken, "the same NextContinuationToken"),
        (
            Pages::AlternatingTokens,
            "continuation token an earlier page gave",
        ),
        (Pages::FreshTokensSameEntry, "lists nothing after"),
        (
            Pages::FreshTokensEmpty,
            "truncated pages in a row with no entry",
        ),
    ] {
        proxy.set(Tamper::EndlessListing {
            prefix: "vault/endless/".into(),
            pages,
        });
        m.remount();
        let listed = fs::read_dir(m.path("endless")).and_then(|d| d.collect::<Result<Vec<_>, _>>());
        assert!(is_eio(&listed), "{pages:?}: readdir gave {listed:?}");
        let other: Vec<_> = fs::read_dir(m.path("other"))
            .expect("other lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(other, ["g"]);
        let log = m.log();
        assert!(
            log.lines()
                .any(|l| l.contains("vault/endless/") && l.contains(why)),
            "{pages:?}: no log line names the listing and says {why:?}:\n{log}"
        );
        let ls = v.run_with(&["ls"], &["endless"]);
        assert_eq!(ls.status.code(), Some(1), "{pages:?}: {}", ls.describe());
        ls.assert_stderr_has(&["vault/endless/", why]);
        // The tools that walk the whole vault.
        proxy.set(Tamper::EndlessListing {
            prefix: "vault/".into(),
            pages,
        });
        let verify = v.run(&["verify"]);
        assert_eq!(
            verify.status.code(),
            Some(1),
            "{pages:?}: {}",
            verify.describe()
        );
        verify.assert_output_has(&["vault/", why]);
        assert!(proxy.take_tampered() > 0, "{pages:?} was never sent");
    }
    proxy.set(Tamper::Nothing);
    m.remount();
    assert_eq!(fs::read(m.path("big")).expect("big").len(), 300_000);
}

/// A config object over the size cap, one with argon2 costs or a slot count beyond the caps
/// (refused before any KDF runs), and a config rolled back after `key rotate`: the mount and
/// every tool refuse, saying why.
#[test]
fn hostile_configs_over_http_are_refused() {
    let v = S3Vault::init_plain(moto(), "fuse-s3-hostile-config", &[]);
    let mut m = v.mount();
    fs::write(m.path("f"), b"content").expect("write");
    m.unmount();
    let owner = Owner(&v);
    let genuine = block_on(owner.config());
    let json: serde_json::Value = serde_json::from_slice(&genuine).expect("config json");
    let slot = json["slots"][0].clone();
    let with_slots = |slots: Vec<serde_json::Value>| {
        let mut j = json.clone();
        j["slots"] = serde_json::Value::Array(slots);
        serde_json::to_vec(&j).expect("json")
    };
    // A passphrase slot (tried before the key file's) with argon2id costs of its choosing.
    let argon2 = |m_cost_kib: u64, t_cost: u64, p_cost: u64| {
        let mut s = slot.clone();
        s["kind"] = serde_json::json!("passphrase");
        s["m_cost_kib"] = serde_json::json!(m_cost_kib);
        s["t_cost"] = serde_json::json!(t_cost);
        s["p_cost"] = serde_json::json!(p_cost);
        with_slots(vec![s, slot.clone()])
    };
    let mut oversized = genuine.clone();
    oversized.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("oversized", oversized, &["larger than 64 KiB"]),
        (
            "argon2-memory",
            argon2(4 << 20, 3, 1),
            &["slot 0", "m_cost_kib 4194304 is outside"],
        ),
        (
            "argon2-passes",
            argon2(65536, 64, 1),
            &["slot 0", "t_cost 64 is outside"],
        ),
        (
            "argon2-lanes",
            argon2(65536, 3, 64),
            &["slot 0", "p_cost 64 is outside"],
        ),
        (
            "slots",
            with_slots(vec![slot.clone(); 40]),
            &["40 key slots", "32"],
        ),
    ];
    let check = |what: &str, needles: &[&str], code: i32| {
        let mount = v.mount_fails();
        mount.assert_stderr_has(needles);
        let dest = v.dir.path().join(format!("get-{what}"));
        // verify reports on stdout; the others list or restore nothing.
        for (out, reports) in [
            (v.run_with(&["ls"], &["/"]), false),
            (v.run(&["verify"]), true),
            (v.run_with(&["get"], &[Path::new("/"), &dest]), false),
        ] {
            assert_eq!(out.status.code(), Some(code), "{what}: {}", out.describe());
            out.assert_output_has(needles);
            if !reports {
                assert_eq!(out.stdout, "", "{what}");
            }
        }
        assert!(!dest.exists(), "{what}: get wrote {}", dest.display());
    };
    for (what, bytes, needles) in cases {
        block_on(owner.put_config(bytes));
        check(what, needles, 1);
    }
    block_on(owner.put_config(genuine.clone()));
    v.run(&["key", "rotate"]).assert_ok();
    block_on(owner.put_config(genuine));
    check(
        "rollback",
        &["config rollback detected", "--accept-config-rollback"],
        2,
    );
}
