//! Unit tests of `sse.rs`: SSE settings, SSE-C key files and the checks of write answers.

use super::*;
use std::io::Write;

const KEY: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";

fn key_file(contents: &[u8], mode: u32) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(contents).expect("write key");
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
    f
}

#[test]
fn key_md5_is_the_s3_fingerprint() {
    let key = SseCKey::from_bytes(&KEY, "test").expect("32 bytes");
    assert_eq!(key.key_base64(), BASE64.encode(KEY));
    assert_eq!(key.key_md5_base64(), BASE64.encode(Md5::digest(KEY)));
    assert!(SseCKey::from_bytes(&KEY[..31], "short").is_err());
}

#[test]
fn key_files_accept_raw_hex_and_base64() {
    let forms: [Vec<u8>; 5] = [
        KEY.to_vec(),
        hex::encode(KEY).into_bytes(),
        format!("{}\n", hex::encode_upper(KEY)).into_bytes(),
        BASE64.encode(KEY).into_bytes(),
        format!("{}\r\n", BASE64.encode(KEY)).into_bytes(),
    ];
    for contents in forms {
        let f = key_file(&contents, 0o600);
        let key = SseCKey::from_file(f.path()).expect("valid key file");
        assert_eq!(key.key_bytes(), &KEY);
    }
    let f = key_file(b"too short\n", 0o400);
    let e = SseCKey::from_file(f.path())
        .expect_err("not a key")
        .to_string();
    assert!(e.contains("not a key") && e.contains("10 bytes"), "{e}");
}

#[test]
fn key_files_readable_by_others_are_refused() {
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let f = key_file(&KEY, mode);
        let e = SseCKey::from_file(f.path())
            .expect_err("open permissions")
            .to_string();
        let path = f.path().display().to_string();
        assert!(e.contains(&path), "{e}");
        assert!(e.contains(&format!("{mode:04o}")), "{e}");
        assert!(e.contains("chmod 600"), "{e}");
    }
    let missing = SseCKey::from_file(Path::new("/nonexistent/key")).expect_err("missing");
    assert!(
        missing.to_string().contains("/nonexistent/key"),
        "{missing}"
    );
}

#[test]
fn key_files_that_are_links_or_another_users_are_refused() {
    let f = key_file(&KEY, 0o600);
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(f.path(), &link).expect("symlink");
    let e = SseCKey::from_file(&link).expect_err("a link").to_string();
    assert!(
        e.contains(&link.display().to_string()) && e.contains("symbolic link"),
        "{e}"
    );
    // The tests run as root, who can give the file to nobody (65534).
    std::os::unix::fs::chown(f.path(), Some(65534), None).expect("chown (run as root)");
    let e = SseCKey::from_file(f.path())
        .expect_err("another user's")
        .to_string();
    assert!(
        e.contains("owned by uid 65534") && e.contains("chown"),
        "{e}"
    );
    std::os::unix::fs::chown(f.path(), Some(0), None).expect("chown back");
    assert_eq!(
        SseCKey::from_file(f.path()).expect("root's").key_bytes(),
        &KEY
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let key = SseCKey::from_bytes(&KEY, "/etc/k").expect("key");
    let mode = SseMode::customer_keys(vec![key.clone()]).expect("one key");
    for shown in [
        format!("{key:?}"),
        format!("{mode:?}"),
        format!("{mode:#?}"),
    ] {
        assert!(!shown.contains(key.key_base64()), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains(&hex::encode(KEY)), "{shown}");
        assert!(shown.contains(key.key_md5_base64()), "{shown}");
    }
}

#[test]
fn modes_from_config_words() {
    let none: [&Path; 0] = [];
    assert!(matches!(
        SseMode::from_config("none", None, false, &none),
        Ok(SseMode::None)
    ));
    assert!(matches!(
        SseMode::from_config("S3", None, false, &none),
        Ok(SseMode::S3)
    ));
    match SseMode::from_config("kms", Some("alias/k"), true, &none) {
        Ok(SseMode::Kms { key_id, bucket_key }) => {
            assert_eq!(key_id.as_deref(), Some("alias/k"));
            assert!(bucket_key);
        }
        other => panic!("{other:?}"),
    }
    let f = key_file(&KEY, 0o600);
    let g = key_file(&[7u8; 32], 0o600);
    let mode = SseMode::from_config("c", None, false, &[f.path(), g.path()]).expect("c");
    assert_eq!(mode.write_key().map(|k| *k.key_bytes()), Some(KEY));
    assert_eq!(mode.read_keys().len(), 2);
    for (mode, kms, files) in [
        ("c", None, &[][..]),
        ("s3", Some("k"), &[][..]),
        ("kms", None, &[f.path()][..]),
        ("sse-x", None, &[][..]),
    ] {
        assert!(
            SseMode::from_config(mode, kms, false, files).is_err(),
            "{mode} {kms:?}"
        );
    }
}

#[test]
fn object_sse_from_headers_and_the_read_rule() {
    assert_eq!(
        ObjectSse::from_headers(Some("AES256"), None, None),
        ObjectSse::S3
    );
    assert_eq!(
        ObjectSse::from_headers(Some("aws:kms"), Some("k"), None),
        ObjectSse::Kms {
            key_id: Some("k".into())
        }
    );
    assert_eq!(ObjectSse::from_headers(None, None, None), ObjectSse::None);
    let old = SseCKey::from_bytes(&KEY, "old").expect("key");
    let new = SseCKey::from_bytes(&[9u8; 32], "new").expect("key");
    let stored = SseMode::customer_keys(vec![old.clone()])
        .expect("key")
        .object_sse();
    assert_eq!(
        ObjectSse::from_headers(Some("AES256"), None, Some(old.key_md5_base64())),
        stored,
        "the SSE-C key MD5 wins"
    );
    let rotated = SseMode::customer_keys(vec![new.clone(), old]).expect("keys");
    let (result, attempts) = rotated.check_read("GetObject", "k", &stored);
    assert!(result.is_ok());
    assert_eq!(attempts, 2);
    let only_new = SseMode::customer_keys(vec![new]).expect("key");
    let (result, attempts) = only_new.check_read("GetObject", "k", &stored);
    assert!(matches!(result, Err(StoreError::AccessDenied { .. })));
    assert_eq!(attempts, 1);
    let (result, _) = SseMode::S3.check_read("HeadObject", "k", &stored);
    assert!(matches!(result, Err(StoreError::InvalidArgument(_))));
    let (result, _) = only_new.check_read("GetObject", "k", &ObjectSse::S3);
    assert!(matches!(result, Err(StoreError::InvalidArgument(_))));
    assert!(
        SseMode::None
            .check_read("GetObject", "k", &ObjectSse::S3)
            .0
            .is_ok()
    );
}

#[test]
fn unconfirmed_writes_are_errors() {
    fn echo<'a>(sse: Option<&'a str>, md5: Option<&'a str>) -> SseEcho<'a> {
        SseEcho {
            server_side_encryption: sse,
            customer_key_md5: md5,
            kms_key_id: None,
        }
    }
    assert!(
        SseMode::None
            .check_confirmed("PutObject", "k", &echo(None, None), true)
            .is_ok()
    );
    assert!(
        SseMode::S3
            .check_confirmed("PutObject", "k", &echo(Some("AES256"), None), true)
            .is_ok()
    );
    let e = SseMode::S3
        .check_confirmed("PutObject", "k", &echo(None, None), true)
        .expect_err("no echo");
    assert!(e.to_string().contains("PutObject"), "{e}");
    let kms = SseMode::Kms {
        key_id: None,
        bucket_key: false,
    };
    assert!(
        kms.check_confirmed("CopyObject", "k", &echo(Some("AES256"), None), true)
            .is_err()
    );
    let key = SseCKey::from_bytes(&KEY, "t").expect("key");
    let md5 = key.key_md5_base64().to_owned();
    let md5 = md5.as_str();
    let c = SseMode::customer_keys(vec![key]).expect("key");
    assert!(
        c.check_confirmed("PutObject", "k", &echo(None, Some(md5)), true)
            .is_ok()
    );
    assert!(
        c.check_confirmed("PutObject", "k", &echo(None, None), true)
            .is_err()
    );
    assert!(
        c.check_confirmed("PutObject", "k", &echo(None, Some("other")), true)
            .is_err()
    );
    assert!(
        c.check_confirmed("CompleteMultipartUpload", "k", &echo(None, None), false)
            .is_ok()
    );
}

#[test]
fn kms_key_ids_match_in_their_forms() {
    let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
    for (want, got) in [
        (id, id),
        (id, arn),
        (arn, arn),
        ("key/1234", "1234"),
        ("testkey-1", "testkey-1"),
        (
            "alias/backup",
            "arn:aws:kms:us-east-1:111122223333:alias/backup",
        ),
        // S3 names the key behind an alias, which only KMS can resolve.
        ("alias/backup", arn),
    ] {
        assert!(kms_key_matches(want, got), "{want} vs {got}");
    }
    for (want, got) in [
        (id, "arn:aws:kms:us-east-1:111122223333:key/ffff"),
        ("testkey-1", "testkey-2"),
        (
            arn,
            "arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        (arn, "ffff"),
        ("alias/backup", "alias/other"),
        (
            "alias/backup",
            "arn:aws:kms:us-east-1:111122223333:alias/other",
        ),
        // An id that is only the end of another: whole resource names are compared.
        ("34cd-56ef-1234567890ab", arn),
    ] {
        assert!(!kms_key_matches(want, got), "{want} vs {got}");
    }
}

#[test]
fn a_write_under_another_kms_key_is_refused() {
    let kms = SseMode::Kms {
        key_id: Some("key-a".into()),
        bucket_key: false,
    };
    let echo = |key_id| SseEcho {
        server_side_encryption: Some(SSE_KMS_VALUE),
        customer_key_md5: None,
        kms_key_id: key_id,
    };
    let other = "arn:aws:kms:us-east-1:111122223333:key/key-b";
    for operation in ["PutObject", "CreateMultipartUpload", "CopyObject"] {
        let e = kms
            .check_confirmed(operation, "k", &echo(Some(other)), true)
            .expect_err("another key")
            .to_string();
        assert!(
            e.contains(operation) && e.contains(other) && e.contains("key-a"),
            "{e}"
        );
        // Also where the response need not name the key, and with verification off.
        assert!(
            kms.check_confirmed(operation, "k", &echo(Some(other)), false)
                .is_err()
        );
        assert!(
            kms.check_kms_key_named(operation, "k", &echo(Some(other)))
                .is_err()
        );
        let e = kms
            .check_confirmed(operation, "k", &echo(None), true)
            .expect_err("no key id")
            .to_string();
        assert!(e.contains("aws-kms-key-id"), "{e}");
        for good in ["key-a", "arn:aws:kms:us-east-1:111122223333:key/key-a"] {
            assert!(
                kms.check_confirmed(operation, "k", &echo(Some(good)), true)
                    .is_ok()
            );
        }
    }
    assert!(
        kms.check_confirmed("CompleteMultipartUpload", "k", &echo(None), false)
            .is_ok()
    );
    assert!(
        kms.check_kms_key_named("PutObject", "k", &echo(None))
            .is_ok()
    );
    // The account's default key (no key id configured): any key the server names.
    let default_key = SseMode::Kms {
        key_id: None,
        bucket_key: false,
    };
    assert!(
        default_key
            .check_confirmed("PutObject", "k", &echo(Some(other)), true)
            .is_ok()
    );
}
