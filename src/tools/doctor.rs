//! `s3cryptfs doctor`: checks, before mounting, everything a mount needs, in the order a mount
//! needs them, and prints one line per check: `ok`, `FAIL` (with what to do), or `skip` when
//! an earlier failure makes the check meaningless.
//!
//! 1. credentials (s3:// only): the AWS chain finds some; no request is sent.
//! 2. bucket (s3://) or store (file://): HeadBucket answers, or the directory store exists.
//! 3. vault config: `PREFIX/.s3cryptfs/config` is there and readable (with the SSE-C keys).
//! 4. key: the key file or passphrase unlocks it.
//! 5. test object: PUT, GET and DELETE of a scratch object under `PREFIX/.s3cryptfs/` with the
//!    configured SSE, which the GET must report (the PUT already refuses an unconfirmed SSE).
//!
//! The doctor never creates a store or a vault, and removes its scratch object.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use super::{ToolError, ToolResult};
use crate::config::VaultSettings;
use crate::config::hints::describe_store_error;
use crate::store::dir::MARKER_FILE;
use crate::store::{
    DirStore, DynStore, MemoryStore, ObjectSse, PutOptions, S3Store, SseMode, StoreError, StoreUrl,
};
use crate::vault::secret::{SecretSource, SecretUse};
use crate::vault::{self, VaultError};

/// How one check went.
enum Outcome {
    Ok(String),
    Fail(String),
    /// Not run: an earlier check it depends on failed.
    Skip(String),
}

/// The lines printed so far and how many checks failed.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn print(&mut self, check: &str, outcome: Outcome) {
        let (status, text) = match outcome {
            Outcome::Ok(text) => ("ok", text),
            Outcome::Fail(text) => {
                self.failed += 1;
                ("FAIL", text)
            }
            Outcome::Skip(text) => ("skip", text),
        };
        println!("{status:<4}  {check:<12}  {text}");
    }

    fn check<T>(&mut self, check: &str, result: Result<(T, String), String>) -> Option<T> {
        match result {
            Ok((value, text)) => {
                self.print(check, Outcome::Ok(text));
                Some(value)
            }
            Err(text) => {
                self.print(check, Outcome::Fail(text));
                None
            }
        }
    }
}

/// Runs the checks; an error when any failed (each already explained on its line).
pub async fn run(settings: &VaultSettings, secret: &SecretSource) -> ToolResult<()> {
    let mut report = Report::default();
    doctor(settings, secret, &mut report).await;
    match report.failed {
        0 => {
            println!("all checks passed: {} can be mounted", settings.store_url);
            Ok(())
        }
        n => Err(ToolError::Problems(format!(
            "{n} check{} failed for {}",
            if n == 1 { "" } else { "s" },
            settings.store_url
        ))),
    }
}

async fn doctor(s: &VaultSettings, secret: &SecretSource, report: &mut Report) {
    let url = s.store_url.to_string();
    let sse = match s.store_options.sse_mode() {
        Ok(sse) => sse,
        Err(e) => {
            report.print("sse", Outcome::Fail(e.to_string()));
            return;
        }
    };
    let Some((store, prefix)) = open_store(s, &sse, report).await else {
        for check in ["vault config", "key", "test object"] {
            report.print(check, Outcome::Skip("the store is not reachable".into()));
        }
        return;
    };

    let config_key = vault::config_key(&prefix);
    let stored = report.check(
        "vault config",
        match vault::load_config(&*store, &prefix).await {
            Ok(stored) => Ok((stored, format!("{config_key} is present and readable"))),
            Err(e) => Err(explain_vault_error(e.with_location(&url))),
        },
    );
    match &stored {
        Some(stored) => {
            let secret = secret.resolve_for(&stored.config);
            let unlocked = secret.load(SecretUse::Unlock, &url).and_then(|secret| {
                let guard = super::rollback_guard(&s.rollback);
                vault::unlock_config(stored, &prefix, &secret, &guard)
            });
            let how = match &secret {
                SecretSource::KeyFile(path) => format!("the key file {}", path.display()),
                SecretSource::PassphraseFile(path) => {
                    format!("the passphrase in {}", path.display())
                }
                SecretSource::Kms(kms) => kms_slots(&stored.config, kms),
                _ => "the passphrase".to_owned(),
            };
            report.check(
                "key",
                match unlocked {
                    Ok(_) => Ok(((), format!("{how} unlocks the vault"))),
                    Err(e) => Err(explain_vault_error(e.with_location(&url))),
                },
            );
        }
        None => report.print("key", Outcome::Skip("no readable vault config".into())),
    }

    let scratch = scratch_key(&config_key);
    let outcome = match test_object(&*store, &scratch, &sse).await {
        Ok(text) => Outcome::Ok(text),
        Err(text) => Outcome::Fail(text),
    };
    report.print("test object", outcome);
}

/// Opens the store and checks it answers: credentials and bucket for s3://, the directory
/// store for file://. `None` (with the failure printed) when it does not.
async fn open_store(
    s: &VaultSettings,
    sse: &SseMode,
    report: &mut Report,
) -> Option<(DynStore, String)> {
    match &s.store_url {
        StoreUrl::S3 { bucket, prefix } => {
            let settings = s.store_options.s3_settings(bucket, prefix);
            let credentials = report.check(
                "credentials",
                match settings.check_credentials().await {
                    Ok(found) => Ok((
                        (),
                        format!(
                            "found ({} access key {})",
                            if found.temporary {
                                "temporary"
                            } else {
                                "long-term"
                            },
                            found.access_key_id
                        ),
                    )),
                    Err(e) => Err(describe_store_error(&e)),
                },
            );
            if credentials.is_none() {
                report.print("bucket", Outcome::Skip("no credentials".into()));
                return None;
            }
            let store = match S3Store::connect(settings, sse.clone()).await {
                Ok(store) => store,
                Err(e) => {
                    report.print("bucket", Outcome::Fail(describe_store_error(&e)));
                    return None;
                }
            };
            report.check(
                "bucket",
                match store.check_bucket().await {
                    Ok(()) => {
                        let (endpoint, region) = (store.endpoint(), store.region());
                        let mut text = format!("s3://{bucket} answers at {endpoint}");
                        if !endpoint.contains(region) {
                            let _ = write!(text, " (region {region})");
                        }
                        Ok(((), text))
                    }
                    Err(e) => Err(explain_bucket_error(&e)),
                },
            )?;
            Some((Arc::new(store) as DynStore, prefix.clone()))
        }
        StoreUrl::File { path } => {
            let opened = if !path.join(MARKER_FILE).is_file() {
                Err(format!(
                    "{} is not a directory store (no {MARKER_FILE}); create a vault there with \
                     `s3cryptfs init {}`",
                    path.display(),
                    s.store_url
                ))
            } else {
                DirStore::open(path)
                    .map(|store| {
                        (
                            Arc::new(store) as DynStore,
                            format!("directory store at {}", path.display()),
                        )
                    })
                    .map_err(|e| e.to_string())
            };
            let store = report.check("store", opened)?;
            Some((store, String::new()))
        }
        StoreUrl::Memory { name } => {
            let store = MemoryStore::named(name).with_sse(sse.clone());
            report.print(
                "store",
                Outcome::Ok(format!("in-process store mem://{name}")),
            );
            Some((store as DynStore, String::new()))
        }
    }
}

/// What to do about a bucket that does not answer.
fn explain_bucket_error(e: &StoreError) -> String {
    let text = describe_store_error(e);
    match e {
        StoreError::AccessDenied { .. } => format!(
            "{text} (AccessDenied: check the access key, the secret and the IAM/bucket policy)"
        ),
        StoreError::Transient { .. } => {
            format!("{text} (check the endpoint URL, the network and that the server is running)")
        }
        _ => text,
    }
}

/// How a KMS unlock went, for the "key" line: the KMS keys of the vault's slots and where KMS
/// was asked.
fn kms_slots(config: &crate::crypto::VaultConfig, kms: &crate::crypto::keys::KmsSecret) -> String {
    let keys: Vec<&str> = config
        .slots()
        .iter()
        .filter_map(|s| s.kms_key_id())
        .collect();
    format!(
        "KMS ({}, key {})",
        kms.client.describe(),
        keys.join(", key ")
    )
}

/// The vault errors, naming a wrong key as such.
fn explain_vault_error(e: VaultError) -> String {
    let text = e.to_string();
    if e.is_wrong_key() && !text.starts_with("wrong key") {
        return format!("wrong key: {text}");
    }
    text
}

/// A scratch object next to the vault config: `PREFIX/.s3cryptfs/doctor-<random>`.
fn scratch_key(config_key: &str) -> String {
    let mut random = [0u8; 8];
    // A failing RNG only makes the name predictable, which is harmless for a scratch object.
    let _ = aws_lc_rs::rand::fill(&mut random);
    let dir = config_key
        .strip_suffix("config")
        .unwrap_or(vault::VAULT_CONFIG_KEY);
    let mut key = dir.to_owned();
    let _ = write!(key, "doctor-{}", hex::encode(random));
    key
}

/// PUT, GET and DELETE of `key` with `sse`, and the SSE the GET reports.
async fn test_object(
    store: &dyn crate::store::ObjectStore,
    key: &str,
    sse: &SseMode,
) -> Result<String, String> {
    let mut body = [0u8; 64];
    let _ = aws_lc_rs::rand::fill(&mut body);
    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    store
        .put(key, Bytes::copy_from_slice(&body), create_only)
        .await
        .map_err(|e| format!("PUT {key} failed: {e}"))?;
    let got = store.get(key, None, None).await;
    // Remove the scratch object whatever the GET said.
    let deleted = store.delete(key).await;
    let got = got.map_err(|e| format!("PUT worked, GET {key} failed: {e}"))?;
    deleted.map_err(|e| format!("PUT and GET worked, DELETE {key} failed: {e}"))?;
    if got.data[..] != body[..] {
        return Err(format!(
            "GET {key} returned {} bytes that differ from the {} written",
            got.data.len(),
            body.len()
        ));
    }
    match store.head(key).await {
        Err(StoreError::NotFound { .. }) => {}
        Ok(_) => return Err(format!("{key} is still there after DELETE")),
        Err(e) => return Err(format!("HEAD after DELETE {key} failed: {e}")),
    }
    let confirmed = confirm_sse(sse, got.info.sse.as_ref())?;
    Ok(format!("PUT, GET and DELETE of {key} work; {confirmed}"))
}

/// Whether the SSE a GET reports is the one asked for.
fn confirm_sse(sse: &SseMode, reported: Option<&ObjectSse>) -> Result<String, String> {
    let reported = reported.cloned().unwrap_or_default();
    let wanted = sse.object_sse();
    let ok = match (&wanted, &reported) {
        (ObjectSse::None, got) => {
            return Ok(format!(
                "no SSE requested (the server stored it with sse {})",
                got.name()
            ));
        }
        (ObjectSse::S3, ObjectSse::S3) => true,
        // AWS reports the key's ARN for an id or alias: the mode is what must match.
        (ObjectSse::Kms { .. }, ObjectSse::Kms { .. }) => true,
        (ObjectSse::C { key_md5: a }, ObjectSse::C { key_md5: b }) => a == b,
        _ => false,
    };
    if ok {
        Ok(format!(
            "the server confirmed sse {}{}",
            reported.name(),
            match &reported {
                ObjectSse::Kms { key_id: Some(id) } => format!(" (KMS key {id})"),
                ObjectSse::C { key_md5 } => format!(" (key MD5 {key_md5})"),
                _ => String::new(),
            }
        ))
    } else {
        Err(format!(
            "asked for sse {} but GET reports sse {}: the server does not apply the requested \
             server-side encryption",
            wanted.name(),
            reported.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SseCKey;

    #[test]
    fn scratch_objects_sit_beside_the_vault_config() {
        let key = scratch_key(&vault::config_key("photos/"));
        assert!(key.starts_with("photos/.s3cryptfs/doctor-"), "{key}");
        assert_ne!(key, scratch_key(&vault::config_key("photos/")));
    }

    #[test]
    fn sse_is_confirmed_only_when_reported() {
        assert!(confirm_sse(&SseMode::S3, Some(&ObjectSse::S3)).is_ok());
        assert!(confirm_sse(&SseMode::S3, Some(&ObjectSse::None)).is_err());
        assert!(confirm_sse(&SseMode::S3, None).is_err());
        let kms = SseMode::Kms {
            key_id: Some("alias/x".into()),
            bucket_key: false,
        };
        let arn = ObjectSse::Kms {
            key_id: Some("arn:aws:kms:r:1:key/x".into()),
        };
        assert!(confirm_sse(&kms, Some(&arn)).is_ok());
        let key = SseCKey::from_bytes(&[1; 32], "k").expect("key");
        let c = SseMode::customer_keys(vec![key]).expect("key");
        assert!(confirm_sse(&c, Some(&c.object_sse())).is_ok());
        let other = ObjectSse::C {
            key_md5: "other".into(),
        };
        assert!(confirm_sse(&c, Some(&other)).is_err());
        let none = confirm_sse(&SseMode::None, Some(&ObjectSse::S3)).expect("nothing asked");
        assert!(none.contains("s3"), "{none}");
    }
}
