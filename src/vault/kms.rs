//! AWS KMS for KMS key slots: the network side of [`KmsWrap`].
//!
//! The SDK config is the S3 store's (`store::s3::sdk_config`: region, the credentials chain,
//! timeouts, standard retries), without the S3 endpoint: KMS has its own, `--kms-endpoint`,
//! else `$AWS_ENDPOINT_URL_KMS`, else `$AWS_ENDPOINT_URL`, else AWS. Unlocking makes one
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

    async fn client(&self) -> CryptoResult<(Client, String, String)> {
        let endpoint = self.target.endpoint();
        let mut settings = S3Settings::new("kms", "");
        settings.region = self.target.region.clone();
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
            let (client, endpoint, region) = self.client().await?;
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
        region,
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
    let code = e.code().unwrap_or("unknown error");
    let detail = e.message().unwrap_or("");
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
        "NotFoundException" => refused(format!(
            "KMS key {key} was not found in region {region} at {endpoint} ({action}){region_hint}; \
             check the key id and the region (--region, $AWS_REGION)"
        )),
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
            let (client, endpoint, region) = self.client().await?;
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
