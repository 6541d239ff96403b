//! AWS KMS for KMS key slots: the network side of [`KmsWrap`].
//!
//! The SDK config is the S3 store's (`store::s3::sdk_config`: region, the credentials chain,
//! timeouts, standard retries), without the S3 endpoint: KMS has its own, `--kms-endpoint`,
//! else `$AWS_ENDPOINT_URL_KMS`, else `$AWS_ENDPOINT_URL`, else AWS. On AWS's own endpoints a
//! key given by its ARN is asked in the ARN's region (see [`call_region`]). Unlocking makes one
//! `Decrypt` call per run: the answer is remembered for the process (a tool that unlocks twice
//! asks once), and nothing per object ever reaches KMS.
//!
//! The slot code calls this synchronously from wherever the vault is unlocked, sometimes
//! inside a tokio runtime, so each call runs on a thread of its own with a small runtime.
//! Errors name the key, the action and the fix, and say whether KMS refused (a wrong key for
//! the exit status) or could not be reached.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use crate::crypto::kms::{KMS_CONTEXT_KEY, KmsWrap, MAX_KMS_BLOB};
use crate::crypto::{CryptoError, CryptoResult};
use crate::store::s3::{DEFAULT_REGION, S3Retry, S3Settings, S3Timeouts, sdk_config};

/// Where KMS is and in which region (credentials come from the AWS chain, as for S3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KmsTarget {
    /// `--kms-endpoint` / `[encryption] kms_endpoint`; `None`: the environment, else AWS.
    pub endpoint: Option<String>,
    /// `--region` / `[store] region`; `None`: the AWS chain.
    pub region: Option<String>,
}

impl KmsTarget {
    /// The endpoint requests go to: the setting, else `$AWS_ENDPOINT_URL_KMS`, else
    /// `$AWS_ENDPOINT_URL`; `None` for AWS's own.
    pub fn endpoint(&self) -> Option<String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_KMS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
    }
}

/// The AWS KMS client of one run.
pub struct AwsKms {
    target: KmsTarget,
    /// Every blob asked about in this run and KMS's answer (plaintexts zeroized on drop), so
    /// a second unlock or `key list` after the unlock asks KMS nothing more.
    cache: Mutex<Vec<(Vec<u8>, Answer)>>,
    calls: AtomicU64,
}

impl std::fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKms")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What KMS answered to a Decrypt.
#[derive(Clone)]
enum Answer {
    Plain(Zeroizing<Vec<u8>>),
    Refused { refused: bool, message: String },
}

/// What one call needs besides the client.
struct Call<'a> {
    action: &'static str,
    key_id: &'a str,
    endpoint: String,
    region: String,
}

impl AwsKms {
    pub fn new(target: KmsTarget) -> AwsKms {
        AwsKms {
            target,
            cache: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
        }
    }

    /// KMS requests this client sent.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The client for a call with `key_id`: its endpoint as shown in messages, and its region.
    async fn client(&self, key_id: &str) -> CryptoResult<(Client, String, String)> {
        let endpoint = self.target.endpoint();
        let mut settings = S3Settings::new("kms", "");
        settings.region = call_region(key_id, endpoint.as_deref(), self.target.region.as_deref());
        let env_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if settings.region.is_none()
            && endpoint.is_some()
            && !["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"]
                .iter()
                .any(|n| env_set(n))
        {
            // A KMS-compatible test server ignores the region; do not ask EC2 metadata.
            settings.region = Some(DEFAULT_REGION.to_owned());
        }
        // One unlock waits for KMS: fail within seconds when it cannot be reached.
        settings.timeouts = S3Timeouts {
            connect: Duration::from_secs(5),
            read: Some(Duration::from_secs(30)),
            attempt: None,
            operation: Some(Duration::from_secs(60)),
        };
        settings.retry = S3Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        };
        let (sdk, region) = sdk_config(&settings).await.map_err(|e| CryptoError::Kms {
            refused: false,
            message: format!("cannot set up the KMS client: {e}"),
        })?;
        let mut config = aws_sdk_kms::config::Builder::from(&sdk);
        if let Some(url) = &endpoint {
            config = config.endpoint_url(url);
        }
        let shown = endpoint.unwrap_or_else(|| format!("AWS KMS ({region})"));
        Ok((Client::from_conf(config.build()), shown, region))
    }

    /// One Decrypt request.
    fn decrypt_now(
        &self,
        key_id: &str,
        vault_id: &str,
        blob: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        blocking(async {
            let (client, endpoint, region) = self.client(key_id).await?;
            let call = Call {
                action: "kms:Decrypt",
                key_id,
                endpoint,
                region,
            };
            self.calls.fetch_add(1, Ordering::Relaxed);
            let out = client
                .decrypt()
                .key_id(key_id)
                .ciphertext_blob(Blob::new(blob.to_vec()))
                .encryption_context(KMS_CONTEXT_KEY, vault_id)
                .send()
                .await
                .map_err(|e| kms_error(&call, &e))?;
            Ok(Zeroizing::new(
                out.plaintext.map(Blob::into_inner).unwrap_or_default(),
            ))
        })
    }
}

/// Run `fut` to completion on a thread of its own with a runtime of its own: the caller may
/// be a plain thread or a task of the mount's runtime (which must not block on another).
fn blocking<T: Send>(fut: impl Future<Output = CryptoResult<T>> + Send) -> CryptoResult<T> {
    let unreachable = |message: String| CryptoError::Kms {
        refused: false,
        message,
    };
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| unreachable(format!("cannot start the KMS client: {e}")))?
                    .block_on(fut)
            })
            .join()
            .unwrap_or_else(|_| Err(unreachable("the KMS client thread panicked".to_owned())))
    })
}

/// The ARN's region, for a key given as an ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
fn arn_region(key_id: &str) -> Option<&str> {
    let mut parts = key_id.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|r| !r.is_empty())
}

/// The region to ask KMS in about `key_id`, given the endpoint setting and the configured
/// region (`None`: the AWS chain). On AWS's own endpoints a key named by its ARN is asked in
/// the ARN's region, whatever the store's region: a KMS key answers only in its own region, so
/// that is the one request that can succeed (the AWS Encryption SDK does the same), and a vault
/// in one region may use a key in another. A key id or alias, or any key at an endpoint set by
/// hand (which decides itself what a region means), is asked in the configured region.
fn call_region(key_id: &str, endpoint: Option<&str>, configured: Option<&str>) -> Option<String> {
    match arn_region(key_id) {
        Some(region) if endpoint.is_none() => {
            if configured.is_some_and(|c| c != region) {
                log::debug!("KMS key {key_id} is asked in its ARN's region {region}");
            }
            Some(region.to_owned())
        }
        _ => configured.map(str::to_owned),
    }
}

const OFFLINE: &str = "or unlock with the vault's offline slot (--key-file / --passphrase-file)";

/// The error of a failed KMS request: what KMS refused (naming the action, the key and the
/// fix), or why it could not be reached.
fn kms_error<E, R>(call: &Call<'_>, err: &SdkError<E, R>) -> CryptoError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let Call {
        action,
        key_id: key,
        endpoint,
        ..
    } = call;
    let SdkError::ServiceError(service) = err else {
        return CryptoError::Kms {
            refused: false,
            message: format!(
                "cannot reach KMS at {endpoint} for {action} with key {key}: {}; check \
                 --kms-endpoint ($AWS_ENDPOINT_URL_KMS) and the network, {OFFLINE}",
                DisplayErrorContext(err)
            ),
        };
    };
    let e = service.err();
    refusal(
        call,
        e.code().unwrap_or("unknown error"),
        e.message().unwrap_or(""),
    )
}

/// The error of a request KMS answered with error `code` and message `detail`.
fn refusal(call: &Call<'_>, code: &str, detail: &str) -> CryptoError {
    let Call {
        action,
        key_id: key,
        endpoint,
        region,
    } = call;
    let region_hint = match arn_region(key) {
        Some(r) if r != region => format!(
            "; the key's ARN is in region {r} but KMS was asked in {region}: give --region {r}"
        ),
        _ => String::new(),
    };
    let refused = |message: String| CryptoError::Kms {
        refused: true,
        message,
    };
    match code {
        "DisabledException" => refused(format!(
            "KMS key {key} is disabled ({action} refused): enable it (aws kms enable-key \
             --key-id {key}), {OFFLINE}"
        )),
        "KMSInvalidStateException" => refused(format!(
            "KMS key {key} is pending deletion or otherwise unusable ({action} refused: \
             {detail}): cancel the deletion (aws kms cancel-key-deletion --key-id {key}) and \
             enable it, {OFFLINE}"
        )),
        "NotFoundException" => match arn_region(key) {
            Some(r) if r != region => refused(format!(
                "KMS key {key} is in region {r}, but KMS at {endpoint} was asked in region \
                 {region} ({action}: {detail}); a KMS key answers only in its own region: give \
                 --region {r} (or AWS_REGION={r}) with a KMS endpoint of {r}, or the ARN of a \
                 key in {region}"
            )),
            _ => refused(format!(
                "KMS key {key} was not found in region {region} at {endpoint} ({action}: \
                 {detail}); check the key id: a key id or alias names a key only in the region \
                 asked, so give the key's region (--region, AWS_REGION) or its full ARN"
            )),
        },
        "AccessDeniedException" => refused(format!(
            "access denied: these AWS credentials may not call {action} on KMS key {key} \
             ({detail}); allow {action} for them in the key policy or an IAM policy, with the \
             condition kms:EncryptionContext:{KMS_CONTEXT_KEY} (docs/KEYS.md), {OFFLINE}"
        )),
        "InvalidCiphertextException" | "IncorrectKeyException" => refused(format!(
            "KMS key {key} does not decrypt this vault's KMS slot ({code}: the slot was made \
             under another key, in another region or for another vault){region_hint}"
        )),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId" => refused(format!(
            "KMS at {endpoint} refused the AWS credentials ({code}: {detail}) for {action} \
             with key {key}: check AWS_ACCESS_KEY_ID / AWS_PROFILE, {OFFLINE}"
        )),
        "KeyUnavailableException"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "ThrottlingException" => CryptoError::Kms {
            refused: false,
            message: format!(
                "KMS at {endpoint} cannot serve {action} with key {key} right now ({code}: \
                 {detail}); try again later, {OFFLINE}"
            ),
        },
        _ => refused(format!(
            "KMS refused {action} with key {key} ({code}: {detail}){region_hint}"
        )),
    }
}

impl KmsWrap for AwsKms {
    fn encrypt(&self, key_id: &str, vault_id: &str, plaintext: &[u8; 32]) -> CryptoResult<Vec<u8>> {
        blocking(async {
            let (client, endpoint, region) = self.client(key_id).await?;
            let call = Call {
                action: "kms:Encrypt",
                key_id,
                endpoint,
                region,
            };
            self.calls.fetch_add(1, Ordering::Relaxed);
            let out = client
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(plaintext.to_vec()))
                .encryption_context(KMS_CONTEXT_KEY, vault_id)
                .send()
                .await
                .map_err(|e| kms_error(&call, &e))?;
            let blob = out
                .ciphertext_blob
                .map(Blob::into_inner)
                .unwrap_or_default();
            if blob.is_empty() || blob.len() > MAX_KMS_BLOB {
                return Err(CryptoError::Kms {
                    refused: false,
                    message: format!(
                        "KMS at {} answered kms:Encrypt with key {key_id} with a ciphertext of \
                         {} bytes (1 to {MAX_KMS_BLOB} expected)",
                        call.endpoint,
                        blob.len()
                    ),
                });
            }
            Ok(blob)
        })
    }

    fn decrypt(
        &self,
        key_id: &str,
        vault_id: &str,
        blob: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let cached = self.cache.lock().ok().and_then(|cache| {
            cache
                .iter()
                .find(|(b, _)| b == blob)
                .map(|(_, answer)| answer.clone())
        });
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let answer = match self.decrypt_now(key_id, vault_id, blob) {
                    Ok(plain) => Answer::Plain(plain),
                    Err(CryptoError::Kms { refused, message }) => {
                        Answer::Refused { refused, message }
                    }
                    Err(e) => return Err(e),
                };
                if let Ok(mut cache) = self.cache.lock() {
                    cache.push((blob.to_vec(), answer.clone()));
                }
                answer
            }
        };
        match answer {
            Answer::Plain(plain) => Ok(plain),
            Answer::Refused { refused, message } => Err(CryptoError::Kms { refused, message }),
        }
    }

    fn describe(&self) -> String {
        self.target
            .endpoint()
            .unwrap_or_else(|| "AWS KMS".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN_EU: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn call<'a>(key_id: &'a str, region: &str) -> Call<'a> {
        Call {
            action: "kms:Decrypt",
            key_id,
            endpoint: format!("AWS KMS ({region})"),
            region: region.to_owned(),
        }
    }

    fn message(e: CryptoError) -> (bool, String) {
        match e {
            CryptoError::Kms { refused, message } => (refused, message),
            other => panic!("not a KMS error: {other:?}"),
        }
    }

    #[test]
    fn an_arn_is_asked_in_its_own_region_on_aws() {
        assert_eq!(arn_region(ARN_EU), Some("eu-west-1"));
        assert_eq!(arn_region("alias/vault"), None);
        assert_eq!(arn_region("arn:aws:kms::111122223333:key/x"), None);
        // AWS's endpoints: the ARN's region, whatever is configured.
        let eu = Some("eu-west-1".to_owned());
        assert_eq!(call_region(ARN_EU, None, Some("us-east-1")), eu);
        assert_eq!(call_region(ARN_EU, None, None), eu);
        // A key id or alias: the configured region (None: the AWS chain decides).
        assert_eq!(
            call_region("alias/v", None, Some("us-east-1")).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(call_region("1234abcd", None, None), None);
        // An endpoint set by hand decides what a region means: the configured one.
        let custom = Some("http://127.0.0.1:4566");
        assert_eq!(
            call_region(ARN_EU, custom, Some("us-east-1")).as_deref(),
            Some("us-east-1")
        );
    }

    #[test]
    fn not_found_in_another_region_names_both_regions_and_the_fix() {
        // What AWS KMS answers when a key's ARN names another region than the endpoint's.
        let (refused, m) = message(refusal(
            &call(ARN_EU, "us-east-1"),
            "NotFoundException",
            "Invalid arn eu-west-1",
        ));
        assert!(
            refused,
            "a wrong region is a refusal (exit status as a wrong key)"
        );
        for part in [
            ARN_EU,
            "in region eu-west-1",
            "asked in region us-east-1",
            "--region eu-west-1",
            "AWS_REGION=eu-west-1",
            "kms:Decrypt",
        ] {
            assert!(m.contains(part), "{part:?} in {m}");
        }
    }

    #[test]
    fn not_found_of_a_key_id_names_the_region_asked_and_the_fix() {
        let (refused, m) = message(refusal(
            &call("alias/vault", "us-east-1"),
            "NotFoundException",
            "Alias arn:aws:kms:us-east-1:111122223333:alias/vault is not found.",
        ));
        assert!(refused);
        for part in [
            "alias/vault",
            "not found in region us-east-1",
            "--region",
            "full ARN",
        ] {
            assert!(m.contains(part), "{part:?} in {m}");
        }
        // Not found in the ARN's own region: a wrong id, not a wrong region.
        let (_, m) = message(refusal(&call(ARN_EU, "eu-west-1"), "NotFoundException", ""));
        assert!(m.contains("not found in region eu-west-1"), "{m}");
        assert!(!m.contains("asked in region"), "{m}");
    }

    #[test]
    fn refusals_name_the_key_and_the_fix_and_outages_are_not_refusals() {
        let c = call(ARN_EU, "eu-west-1");
        let cases = [
            ("DisabledException", true, "enable-key"),
            ("KMSInvalidStateException", true, "cancel-key-deletion"),
            (
                "AccessDeniedException",
                true,
                "kms:EncryptionContext:s3cryptfs-vault",
            ),
            ("KMSInternalException", false, "try again later"),
            ("ThrottlingException", false, "try again later"),
        ];
        for (code, want_refused, fix) in cases {
            let (refused, m) = message(refusal(&c, code, "detail"));
            assert_eq!(refused, want_refused, "{code}: {m}");
            assert!(m.contains(ARN_EU) && m.contains(fix), "{code}: {m}");
        }
    }
}
