//! A mount of a vault unlocked through KMS (moto's, behind `common::kmsproxy`): `mount --kms`
//! with no secret on the machine costs exactly one KMS request however many files it then
//! reads and writes; a remount with no secret flag opens through KMS without prompting; a
//! disabled key is refused before anything is mounted, naming KMS and the key; `verify --deep
//! --kms` passes once it is enabled again. With encrypted names (the default), the bucket's
//! keys show no part of any name, a directory rename included.

use std::ffi::OsStr;
use std::fs;

use super::kms::{KmsVault, code};
use crate::common::cli::{CliMount, args, run_cli_env};
use crate::common::is_mounted;
use crate::common::s3vault::block_on;

fn mount_args(v: &KmsVault, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mp = v.path("mnt");
    let staging = v.path("staging");
    fs::create_dir_all(&mp).unwrap();
    fs::create_dir_all(&staging).unwrap();
    let mut a = args(["mount"]);
    a.extend(args(extra));
    a.extend(args([OsStr::new("--staging-dir"), staging.as_os_str()]));
    a.extend(v.store_args());
    a.push(v.url.clone().into());
    a.push(mp.into());
    a
}

#[test]
fn kms_mount_makes_one_kms_call_and_a_disabled_key_is_refused_before_mounting() {
    let v = KmsVault::new("kms-mount");
    let key = v.create_key();
    v.run(&["init", "--kms-key-id", &key], &[&v.url])
        .assert_ok();

    v.proxy.reset_counts();
    let mut m = CliMount::start_env(v.path("mnt"), mount_args(&v, &["--kms"]), v.env.clone());
    fs::create_dir_all(m.path("a/b")).unwrap();
    for i in 0..20 {
        fs::write(
            m.path(&format!("a/b/file {i}.txt")),
            format!("contents {i}"),
        )
        .unwrap();
    }
    for i in 0..20 {
        let got = fs::read_to_string(m.path(&format!("a/b/file {i}.txt"))).unwrap();
        assert_eq!(got, format!("contents {i}"));
    }
    m.unmount();
    let counts = v.proxy.counts();
    assert_eq!(
        counts.values().sum::<u64>(),
        1,
        "one mount, 20 files written and read: exactly one KMS request, {counts:?}"
    );
    assert_eq!(counts.get("Decrypt"), Some(&1), "{counts:?}");

    // No secret flag at all: the vault's KMS slot is used, nothing is prompted for. Names
    // are encrypted (the default of `init`): distinctive ones, a directory renamed.
    let mut m = CliMount::start_env(v.path("mnt"), mount_args(&v, &[]), v.env.clone());
    assert_eq!(
        fs::read_to_string(m.path("a/b/file 7.txt")).unwrap(),
        "contents 7"
    );
    let long = format!("{}.pdf", "patient-jane-doe-".repeat(14));
    assert_eq!(long.len(), 242);
    let names = [
        "patients",
        "jane doe",
        "2026-tax-return.pdf",
        "Ärztebrief über Röntgen.txt",
    ];
    fs::create_dir_all(m.path("patients/jane doe")).unwrap();
    fs::write(m.path("patients/jane doe/2026-tax-return.pdf"), "tax").unwrap();
    fs::write(
        m.path("patients/jane doe/Ärztebrief über Röntgen.txt"),
        "x-ray",
    )
    .unwrap();
    fs::write(m.path(&format!("patients/jane doe/{long}")), "long").unwrap();
    fs::rename(m.path("patients/jane doe"), m.path("patients/jane-renamed")).unwrap();
    m.unmount();
    let listed = block_on(v.server.client().list_objects_v2().bucket(&v.bucket).send())
        .expect("list the bucket");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.len() > 5, "{keys:?}");
    for key in &keys {
        for word in names
            .iter()
            .chain(&["jane-renamed", "patient", "Röntgen", "return"])
        {
            assert!(!key.contains(word), "{key:?} shows {word:?}");
        }
    }
    let mut m = CliMount::start_env(v.path("mnt"), mount_args(&v, &["--kms"]), v.env.clone());
    let dir = m.path("patients/jane-renamed");
    assert_eq!(
        fs::read_to_string(dir.join("2026-tax-return.pdf")).unwrap(),
        "tax"
    );
    assert_eq!(
        fs::read_to_string(dir.join("Ärztebrief über Röntgen.txt")).unwrap(),
        "x-ray"
    );
    assert_eq!(fs::read_to_string(dir.join(&long)).unwrap(), "long");
    let mut listed: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    let mut want = vec![long.clone(), names[2].to_owned(), names[3].to_owned()];
    want.sort();
    assert_eq!(listed, want);
    assert!(!m.path("patients/jane doe").exists());
    m.unmount();

    // A disabled key: refused before mounting, naming KMS and the key, exit 3.
    v.set_enabled(&key, false);
    let out = run_cli_env(&mount_args(&v, &["--kms"]), &v.env);
    out.assert_failed()
        .assert_stderr_has(&["KMS", &key, "disabled"]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    assert!(
        !is_mounted(&v.path("mnt")),
        "mounted despite a disabled key"
    );

    v.set_enabled(&key, true);
    v.run(&["verify", "--deep", "--kms"], &[&v.url]).assert_ok();
}
