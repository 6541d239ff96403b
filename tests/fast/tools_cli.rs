//! The tool subcommands through the built binary on a directory-store vault: exit codes,
//! output shapes (`--json`), key management end to end, and `verify` finding damage.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use s3cryptfs::crypto::Secret;
use s3cryptfs::crypto::format::seal_all;
use s3cryptfs::store::{DirStore, MemoryStore, ObjectStore, PutOptions};
use s3cryptfs::vault;
use zeroize::Zeroizing;

struct Env {
    dir: tempfile::TempDir,
    url: String,
    key: PathBuf,
}

impl Env {
    /// `local_tree` under `tree/`, stored with `s3cryptfs put` at vault path `dest`.
    fn put_tree(&self, dest: &str) {
        let tree = self.path("tree");
        local_tree(&tree);
        let k = self.key_arg();
        self.run(&[
            "put",
            "--key-file",
            &k,
            &self.url,
            tree.to_str().expect("utf8"),
            dest,
        ])
        .ok();
    }

    /// A vault as `init` makes it: encrypted names.
    fn new() -> Env {
        Env::with_init_flags(&[])
    }

    /// A vault made with `init --plain-names`: tests that reach objects by their plaintext keys.
    fn plain_names() -> Env {
        Env::with_init_flags(&["--plain-names"])
    }

    fn with_init_flags(flags: &[&str]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dir.path().join("vault").display());
        let key = dir.path().join("vault.key");
        let env = Env { dir, url, key };
        let key_arg = env.key_arg();
        let mut args = vec!["init", "--block-size", "4096", "--key-file", &key_arg];
        args.extend_from_slice(flags);
        args.push(&env.url);
        env.run(&args).ok();
        env
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn key_arg(&self) -> String {
        self.key.display().to_string()
    }

    fn secret_file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p.display().to_string()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_state(args, &self.path("state"))
    }

    /// [`Env::run`] on a machine whose state (the config counters seen) is in `state`.
    fn run_with_state(&self, args: &[&str], state: &Path) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_s3cryptfs"))
            .args(args)
            .env("S3CRYPTFS_STATE_DIR", state)
            .env_remove("S3CRYPTFS_PASSPHRASE")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run s3cryptfs");
        Run {
            args: args.join(" "),
            out,
        }
    }

    /// The vault's directory store, opened in this process (the binary is not running).
    fn store(&self) -> DirStore {
        DirStore::open(&self.path("vault")).expect("dir store")
    }
}

struct Run {
    args: String,
    out: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn ok(&self) -> &Self {
        assert!(
            self.out.status.success(),
            "`s3cryptfs {}` failed ({:?}):\n{}{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }
    fn fails_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "`s3cryptfs {}`:\n{}{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        assert!(
            self.stderr().contains(needle) || self.stdout().contains(needle),
            "`s3cryptfs {}`: expected {needle:?} in\n{}{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| {
            panic!(
                "`s3cryptfs {}`: not JSON ({e}): {}",
                self.args,
                self.stdout()
            )
        })
    }
}

fn local_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"hello, vault\n").expect("write");
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(root.join("sub/big.bin"), big).expect("write");
    std::fs::write(root.join("sub/small"), b"small").expect("write");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Replace an object's bytes, keeping its metadata.
fn rewrite(store: &DirStore, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
    block_on(async {
        let got = store.get(key, None, None).await.expect("get");
        let mut bytes = got.data.to_vec();
        f(&mut bytes);
        let opts = PutOptions {
            metadata: got.info.metadata.unwrap_or_default(),
            ..PutOptions::default()
        };
        store.put(key, Bytes::from(bytes), opts).await.expect("put");
    });
}

#[test]
fn files_in_and_out_and_a_clean_verify() {
    let env = Env::new();
    let k = env.key_arg();
    let tree = env.path("tree");
    local_tree(&tree);
    let put = env.run(&[
        "put",
        "--key-file",
        &k,
        &env.url,
        tree.to_str().expect("utf8"),
        "/",
    ]);
    put.ok();
    assert!(put.stdout().contains("stored 3 files"), "{}", put.stdout());

    let ls = env.run(&["ls", "--key-file", &k, &env.url]);
    assert_eq!(ls.ok().stdout(), "tree/\n");
    let ls = env.run(&["ls", "-l", "--key-file", &k, &env.url, "tree/sub"]);
    let text = ls.ok().stdout();
    assert!(text.contains("-rw-"), "{text}");
    assert!(text.contains("50000"), "{text}");
    assert!(text.contains("big.bin"), "{text}");

    let cat = env.run(&[
        "cat",
        "--key-file",
        &k,
        &env.url,
        "tree/hello.txt",
        "/tree/sub/small",
    ]);
    assert_eq!(cat.ok().stdout(), "hello, vault\nsmall");
    env.run(&["cat", "--key-file", &k, &env.url, "tree/nope"])
        .fails_with(1, "no such file");
    env.run(&["cat", "--key-file", &k, &env.url, "tree/sub"])
        .fails_with(1, "is a directory");

    let out = env.path("out");
    env.run(&[
        "get",
        "--key-file",
        &k,
        &env.url,
        "/",
        out.to_str().expect("utf8"),
    ])
    .ok();
    assert_eq!(
        std::fs::read(out.join("tree/sub/big.bin")).expect("read"),
        std::fs::read(env.path("tree/sub/big.bin")).expect("read")
    );

    let verify = env.run(&["verify", "--deep", "--json", "--key-file", &k, &env.url]);
    let json = verify.ok().json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["objects"], 3);
    assert_eq!(json["deep"], true);
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(0));
    let text = env.run(&["verify", "--key-file", &k, &env.url]);
    assert!(
        text.ok().stdout().contains("all sound"),
        "{}",
        text.stdout()
    );

    // A wrong key is exit status 3; no key at all (and no terminal) is an error too.
    let wrong = env.secret_file("wrong.key", &"ab".repeat(32));
    env.run(&["ls", "--key-file", &wrong, &env.url])
        .fails_with(3, "wrong key");
    env.run(&["ls", &env.url])
        .fails_with(1, "no key or passphrase");
    // Read-only commands never create a store where there is none.
    let missing = format!("file://{}", env.path("missing").display());
    env.run(&["ls", "--key-file", &k, &missing])
        .fails_with(2, "not a directory");
    assert!(!env.path("missing").exists());
}

#[test]
fn verify_finds_damage_and_a_missing_config() {
    let env = Env::plain_names();
    let k = env.key_arg();
    env.put_tree("t");
    let store = env.store();
    rewrite(&store, "t/sub/big.bin", |b| b[10_000] ^= 0x40);
    rewrite(&store, "t/sub/small", |b| {
        b.pop();
    });
    let other = MemoryStore::new();
    let other_keys = block_on(vault::init_vault(
        &*other,
        "",
        &Secret::KeyFile(Zeroizing::new([9; 32])),
        4096,
    ))
    .expect("other vault");
    block_on(store.put(
        "t/foreign",
        Bytes::from(seal_all(&other_keys, b"not ours").expect("seal")),
        PutOptions::default(),
    ))
    .expect("put");

    let run = env.run(&["verify", "--deep", "--json", "--key-file", &k, &env.url]);
    run.fails_with(1, "problem");
    let json = run.json();
    assert_eq!(json["ok"], false);
    let problems: BTreeMap<String, String> = json["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["key"].as_str().expect("key").to_owned(),
                p["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems.get("t/sub/big.bin").map(String::as_str),
        Some("corrupt")
    );
    assert_eq!(
        problems.get("t/sub/small").map(String::as_str),
        Some("corrupt")
    );
    assert_eq!(
        problems.get("t/foreign").map(String::as_str),
        Some("foreign")
    );
    assert_eq!(problems.len(), 3, "{json}");
    for p in json["problems"].as_array().expect("problems") {
        assert!(!p["reason"].as_str().expect("reason").is_empty());
    }

    // Without --deep, the flipped data byte goes unseen; the rest is still found.
    let run = env.run(&["verify", "--key-file", &k, &env.url]);
    run.fails_with(1, "PROBLEM t/foreign: foreign");
    assert!(!run.stdout().contains("big.bin"), "{}", run.stdout());

    // No vault config: reported without asking for a key.
    block_on(store.delete(".s3cryptfs/config")).expect("delete");
    let run = env.run(&["verify", "--json", &env.url]);
    run.fails_with(1, "missing_config");
    assert_eq!(run.json()["problems"][0]["kind"], "missing_config");
}

#[test]
fn key_slots_passwd_rotation_and_retirement() {
    let env = Env::new();
    let k = env.key_arg();
    env.put_tree("t");

    let list = env.run(&["key", "list", "--json", "--key-file", &k, &env.url]);
    let json = list.ok().json();
    assert_eq!(json["current_generation"], 1);
    assert_eq!(json["slots"][0]["kind"], "key_file");
    assert_eq!(json["slots"][0]["unlocked_with"], true);

    // A passphrase slot, then change its passphrase.
    let p1 = env.secret_file("p1", "first passphrase\n");
    let p2 = env.secret_file("p2", "second passphrase\n");
    env.run(&[
        "key",
        "add",
        "--key-file",
        &k,
        "--new-passphrase-file",
        &p1,
        "--label",
        "laptop",
        &env.url,
    ])
    .ok();
    env.run(&[
        "key",
        "add",
        "--key-file",
        &k,
        "--new-passphrase-file",
        &p1,
        &env.url,
    ])
    .fails_with(1, "already opens key slot 1");
    env.run(&["ls", "--passphrase-file", &p1, &env.url]).ok();
    env.run(&[
        "key",
        "passwd",
        "--passphrase-file",
        &p1,
        "--new-passphrase-file",
        &p2,
        &env.url,
    ])
    .fails_with(1, "--yes");
    env.run(&[
        "key",
        "passwd",
        "--passphrase-file",
        &p1,
        "--new-passphrase-file",
        &p2,
        "--yes",
        &env.url,
    ])
    .ok();
    env.run(&["ls", "--passphrase-file", &p1, &env.url])
        .fails_with(3, "wrong key");
    env.run(&["ls", "--passphrase-file", &p2, &env.url]).ok();
    let json = env
        .run(&["key", "list", "--json", "--passphrase-file", &p2, &env.url])
        .ok()
        .json();
    assert_eq!(json["slots"][1]["label"], "laptop");
    assert_eq!(json["slots"][1]["unlocked_with"], true);

    // Removing: confirmation required; never the last slot.
    env.run(&["key", "remove", "--key-file", &k, "--slot", "1", &env.url])
        .fails_with(1, "--yes");
    env.run(&[
        "key",
        "remove",
        "--key-file",
        &k,
        "--slot",
        "1",
        "--yes",
        &env.url,
    ])
    .ok();
    env.run(&["ls", "--passphrase-file", &p2, &env.url])
        .fails_with(3, "wrong key");
    env.run(&[
        "key",
        "remove",
        "--key-file",
        &k,
        "--slot",
        "0",
        "--yes",
        &env.url,
    ])
    .fails_with(1, "only key slot");
    env.run(&[
        "key",
        "remove",
        "--key-file",
        &k,
        "--slot",
        "7",
        "--yes",
        &env.url,
    ])
    .fails_with(2, "no key slot 7");

    // Rotation with rewrap, then retirement of generation 1.
    env.run(&["key", "rotate", "--key-file", &k, "--retire", "1", &env.url])
        .fails_with(2, "current one");
    let rotate = env.run(&["key", "rotate", "--rewrap", "--key-file", &k, &env.url]);
    let text = rotate.ok().stdout();
    assert!(text.contains("key generation 2 is now current"), "{text}");
    assert!(text.contains("3 rewrapped"), "{text}");
    env.run(&[
        "put",
        "--key-file",
        &k,
        &env.url,
        env.path("tree/hello.txt").to_str().expect("utf8"),
        "after.txt",
    ])
    .ok();
    let resume = env.run(&[
        "key",
        "rotate",
        "--rewrap",
        "--resume",
        "--key-file",
        &k,
        &env.url,
    ]);
    assert!(
        resume
            .ok()
            .stdout()
            .contains("0 rewrapped, 4 already current"),
        "{}",
        resume.stdout()
    );
    env.run(&["key", "rotate", "--retire", "1", "--key-file", &k, &env.url])
        .fails_with(1, "--yes");
    env.run(&[
        "key",
        "rotate",
        "--retire",
        "1",
        "--yes",
        "--key-file",
        &k,
        &env.url,
    ])
    .ok();
    let json = env
        .run(&["key", "list", "--json", "--key-file", &k, &env.url])
        .ok()
        .json();
    assert_eq!(json["generations"], serde_json::json!([2]));
    // Every object still checks out, old ones through their metadata wraps.
    let json = env
        .run(&["verify", "--deep", "--json", "--key-file", &k, &env.url])
        .ok()
        .json();
    assert_eq!(json["objects"], 4);
}

/// Reading rewrapped objects after their generation was retired goes through the file
/// system layer, which must hand object metadata to the opener (see the tools report).
#[test]
fn files_read_after_retirement() {
    let env = Env::new();
    let k = env.key_arg();
    env.put_tree("t");
    env.run(&["key", "rotate", "--rewrap", "--key-file", &k, &env.url])
        .ok();
    env.run(&[
        "key",
        "rotate",
        "--retire",
        "1",
        "--yes",
        "--key-file",
        &k,
        &env.url,
    ])
    .ok();
    let cat = env.run(&["cat", "--key-file", &k, &env.url, "t/hello.txt"]);
    assert_eq!(cat.ok().stdout(), "hello, vault\n");
    let out = env.path("out");
    env.run(&[
        "get",
        "--key-file",
        &k,
        &env.url,
        "/",
        out.to_str().expect("utf8"),
    ])
    .ok();
    assert_eq!(
        std::fs::read(out.join("t/sub/big.bin")).expect("read"),
        std::fs::read(env.path("tree/sub/big.bin")).expect("read")
    );
}

/// `cleanup` lists the uploads a crash left open and aborts those older than `--older-than`;
/// `--dry-run` aborts nothing. The key is not needed.
#[test]
fn cleanup_aborts_old_incomplete_uploads() {
    let env = Env::new();
    let store = env.store();
    let id = block_on(store.create_multipart("docs/big.iso", PutOptions::default()))
        .expect("create upload");
    let pending = || block_on(store.list_uploads("")).expect("list uploads");

    let run = env.run(&["cleanup", &env.url]);
    run.ok();
    assert!(run.stdout().contains("aborted 0"), "{}", run.stdout());
    assert!(
        run.stdout().contains("1 younger than 24h"),
        "{}",
        run.stdout()
    );
    assert_eq!(pending().len(), 1, "a young upload is left alone");

    let run = env.run(&["cleanup", "--dry-run", "--older-than", "0", &env.url]);
    run.ok();
    assert!(
        run.stdout().contains("would abort docs/big.iso"),
        "{}",
        run.stdout()
    );
    assert_eq!(pending().len(), 1, "--dry-run aborts nothing");

    let run = env.run(&["cleanup", "--older-than", "0s", &env.url]);
    run.ok();
    assert!(
        run.stdout()
            .contains(&format!("aborted docs/big.iso (upload {id}")),
        "{}",
        run.stdout()
    );
    assert!(pending().is_empty());

    env.run(&["cleanup", "--older-than", "3w", &env.url])
        .fails_with(2, "unit must be s, m, h or d");
}

/// Every tool takes the TOML config of `mount`: `ls --config F` finds the store and the key
/// there, and a first operand without `://` is a path of the vault.
#[test]
fn tools_take_the_mount_config() {
    let env = Env::new();
    env.put_tree("docs");
    let config = env.secret_file(
        "vault.toml",
        &format!(
            "[store]\nurl = \"{}\"\n[encryption]\nkey_file = \"{}\"\n",
            env.url,
            env.key_arg()
        ),
    );
    assert_eq!(
        env.run(&["ls", "--config", &config]).ok().stdout(),
        "docs/\n"
    );
    let ls = env.run(&["ls", "--config", &config, "docs"]);
    assert_eq!(ls.ok().stdout(), "hello.txt\nsub/\n");
    let cat = env.run(&["cat", "-c", &config, "docs/hello.txt"]);
    assert_eq!(cat.ok().stdout(), "hello, vault\n");
}

/// The vault config object's bytes as stored now.
fn config_bytes(env: &Env) -> Bytes {
    block_on(env.store().get(".s3cryptfs/config", None, None))
        .expect("get config")
        .data
}

/// Put `bytes` back as the vault config object, as whoever controls the bucket can.
fn put_config(env: &Env, bytes: &Bytes) {
    block_on(
        env.store()
            .put(".s3cryptfs/config", bytes.clone(), PutOptions::default()),
    )
    .expect("put config");
}

/// Putting back the config a `key rotate` replaced is refused by the next command (exit 2,
/// saying how to accept it) on the machine that saw the rotation; `--accept-config-rollback`
/// or `[encryption] accept_config_rollback` accept it, and a machine that never saw the newer
/// config cannot tell.
#[test]
fn a_config_put_back_after_key_rotate_is_refused() {
    let env = Env::new();
    let k = env.key_arg();
    env.put_tree("t");
    let before = config_bytes(&env);
    env.run(&["key", "rotate", "--key-file", &k, &env.url]).ok();
    let rotated = config_bytes(&env);
    assert!(
        String::from_utf8_lossy(&rotated).contains("\"config_counter\": 1"),
        "{}",
        String::from_utf8_lossy(&rotated)
    );
    env.run(&["ls", "--key-file", &k, &env.url]).ok();

    put_config(&env, &before);
    let ls = env.run(&["ls", "--key-file", &k, &env.url, "t"]);
    ls.fails_with(2, "config rollback detected")
        .fails_with(2, "(seen 1, got 0)")
        .fails_with(2, "--accept-config-rollback");
    assert_eq!(ls.stdout(), "");
    // Every command that unlocks refuses it, a key change too (which saves nothing).
    env.run(&["key", "rotate", "--key-file", &k, &env.url])
        .fails_with(2, "rollback detected");
    env.run(&["key", "list", "--key-file", &k, &env.url])
        .fails_with(2, "rollback detected");
    env.run(&["verify", "--key-file", &k, &env.url])
        .fails_with(2, "rollback detected");
    env.run(&["cat", "--key-file", &k, &env.url, "t/hello.txt"])
        .fails_with(2, "rollback detected");
    assert_eq!(config_bytes(&env), before);
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    env.run(&[
        "mount",
        "-f",
        "--key-file",
        &k,
        &env.url,
        mnt.to_str().expect("utf8"),
    ])
    .fails_with(2, "rollback detected");

    // A machine that never saw the rotated config takes the old one as the newest.
    let other = env.path("other-machine");
    let ls = env.run_with_state(&["ls", "--key-file", &k, &env.url, "t"], &other);
    assert_eq!(ls.ok().stdout(), "hello.txt\nsub/\n");

    // Accepted on purpose: the old config is this machine's newest from now on.
    let ls = env.run(&[
        "ls",
        "--accept-config-rollback",
        "--key-file",
        &k,
        &env.url,
        "t",
    ]);
    assert_eq!(ls.ok().stdout(), "hello.txt\nsub/\n");
    env.run(&["ls", "--key-file", &k, &env.url]).ok();

    // The same through the config file.
    put_config(&env, &rotated);
    env.run(&["ls", "--key-file", &k, &env.url]).ok();
    put_config(&env, &before);
    env.run(&["ls", "--key-file", &k, &env.url])
        .fails_with(2, "rollback detected");
    let config = env.secret_file(
        "vault.toml",
        &format!(
            "[store]\nurl = \"{}\"\n[encryption]\nkey_file = \"{k}\"\n\
             accept_config_rollback = true\n",
            env.url
        ),
    );
    env.run(&["ls", "--config", &config]).ok();
    env.run(&["ls", "--key-file", &k, &env.url]).ok();
}
