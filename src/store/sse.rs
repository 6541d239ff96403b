//! Server-side encryption (SSE) per mount: which mode a store asks the server for, and the
//! SSE-C keys it sends.
//!
//! This module knows nothing of the AWS SDK, so every store (S3, memory, directory) can apply the
//! same rules. Two decisions a reader must know:
//! - SSE-C key rotation: the first key writes, every key may read. A read that the server refuses
//!   with the first key is tried again with the next one (as s3fs does).
//! - A write whose response does not confirm the requested SSE is an error, never a silent
//!   downgrade ([`SseMode::check_confirmed`]). With SSE-KMS and a configured key, the response
//!   must also name that key: a server that encrypted under another key is refused too.
//!
//! Key material never appears in `Debug` output or logs: an [`SseCKey`] shows only the MD5
//! fingerprint S3 itself echoes, and the source it was read from.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::{StoreError, StoreResult};

/// SSE-C's only algorithm name.
pub const SSE_C_ALGORITHM: &str = "AES256";
/// `x-amz-server-side-encryption` value of SSE-S3.
pub const SSE_S3_VALUE: &str = "AES256";
/// `x-amz-server-side-encryption` value of SSE-KMS.
pub const SSE_KMS_VALUE: &str = "aws:kms";

/// Key files larger than this are certainly not keys (the longest accepted form is 64 hex digits
/// and a newline); refusing them early keeps a wrong path from being read whole.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// What the store asks the server to do with the bytes it stores (they are already encrypted
/// on the client; this is the second, server-side layer an operator may require).
#[derive(Clone, Debug, Default)]
pub enum SseMode {
    /// Send no SSE headers: the bucket's default applies.
    #[default]
    None,
    /// SSE-S3 (`x-amz-server-side-encryption: AES256`).
    S3,
    /// SSE-KMS with the given key (the account's default `aws/s3` key when `None`), optionally
    /// with an S3 Bucket Key.
    Kms {
        key_id: Option<String>,
        bucket_key: bool,
    },
    /// SSE-C with customer keys: the first key writes, all of them read.
    C { keys: Vec<SseCKey> },
}

impl SseMode {
    /// Builds a mode from the words of the config file and the command line (`none`, `s3`,
    /// `kms`, `c`), reading SSE-C key files. Options that do not belong to `mode` are refused.
    pub fn from_config(
        mode: &str,
        kms_key_id: Option<&str>,
        bucket_key: bool,
        key_files: &[impl AsRef<Path>],
    ) -> StoreResult<SseMode> {
        let invalid = |msg: String| StoreError::InvalidArgument(format!("sse: {msg}"));
        let mode = mode.trim().to_ascii_lowercase();
        if mode != "kms" && (kms_key_id.is_some() || bucket_key) {
            return Err(invalid(format!(
                "a KMS key id or bucket key is set but sse is {mode:?}; set sse = \"kms\""
            )));
        }
        if mode != "c" && !key_files.is_empty() {
            return Err(invalid(format!(
                "SSE-C key files are set but sse is {mode:?}; set sse = \"c\""
            )));
        }
        match mode.as_str() {
            "none" | "" => Ok(SseMode::None),
            "s3" | "aes256" => Ok(SseMode::S3),
            "kms" | "aws:kms" => Ok(SseMode::Kms {
                key_id: kms_key_id.map(str::to_owned),
                bucket_key,
            }),
            "c" => {
                let keys = key_files
                    .iter()
                    .map(|p| SseCKey::from_file(p.as_ref()))
                    .collect::<StoreResult<Vec<_>>>()?;
                SseMode::customer_keys(keys)
            }
            other => Err(invalid(format!(
                "unknown mode {other:?}; expected none, s3, kms or c"
            ))),
        }
    }

    /// SSE-C with `keys` (at least one; the first writes).
    pub fn customer_keys(keys: Vec<SseCKey>) -> StoreResult<SseMode> {
        if keys.is_empty() {
            return Err(StoreError::InvalidArgument(
                "sse: SSE-C needs at least one key file (sse_c_key_files)".into(),
            ));
        }
        Ok(SseMode::C { keys })
    }

    /// The mode's name as the config spells it.
    pub fn name(&self) -> &'static str {
        match self {
            SseMode::None => "none",
            SseMode::S3 => "s3",
            SseMode::Kms { .. } => "kms",
            SseMode::C { .. } => "c",
        }
    }

    /// The key new objects are written with (SSE-C only).
    pub fn write_key(&self) -> Option<&SseCKey> {
        match self {
            SseMode::C { keys } => keys.first(),
            _ => None,
        }
    }

    /// The keys reads may use, in the order to try them (SSE-C only; empty otherwise).
    pub fn read_keys(&self) -> &[SseCKey] {
        match self {
            SseMode::C { keys } => keys,
            _ => &[],
        }
    }

    /// The `x-amz-server-side-encryption` value this mode requests, if any.
    pub fn requested_algorithm(&self) -> Option<&'static str> {
        match self {
            SseMode::S3 => Some(SSE_S3_VALUE),
            SseMode::Kms { .. } => Some(SSE_KMS_VALUE),
            SseMode::None | SseMode::C { .. } => None,
        }
    }

    /// Checks that a write response confirms the SSE this mode asked for: the
    /// `x-amz-server-side-encryption` value for SSE-S3 / SSE-KMS, the key MD5 for SSE-C, and
    /// for SSE-KMS with a configured key id the key the response names
    /// ([`kms_key_matches`]). `customer_key_echoed` says whether the operation's response
    /// carries the key headers, the SSE-C key MD5 and the KMS key id
    /// (CompleteMultipartUpload's does not); a key id the response does name is checked
    /// either way.
    pub fn check_confirmed(
        &self,
        operation: &str,
        key: &str,
        echo: &SseEcho<'_>,
        customer_key_echoed: bool,
    ) -> StoreResult<()> {
        let refused = |what: String| StoreError::Io {
            key: key.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "{operation} was not confirmed with the requested server-side encryption \
                     ({what}); the server may have stored the object without it. Use a server \
                     that supports sse = \"{}\", or turn off verify_sse to accept this",
                    self.name()
                ),
            ),
        };
        match self {
            SseMode::None => Ok(()),
            SseMode::S3 | SseMode::Kms { .. } => {
                let wanted = self.requested_algorithm().unwrap_or_default();
                match echo.server_side_encryption {
                    Some(got) if got == wanted => {}
                    Some(got) => {
                        return Err(refused(format!(
                            "asked for x-amz-server-side-encryption: {wanted}, the server answered {got}"
                        )));
                    }
                    None => {
                        return Err(refused(format!(
                            "asked for x-amz-server-side-encryption: {wanted}, the response has none"
                        )));
                    }
                }
                let SseMode::Kms {
                    key_id: Some(want), ..
                } = self
                else {
                    return Ok(());
                };
                match echo.kms_key_id {
                    Some(got) if kms_key_matches(want, got) => Ok(()),
                    // Never accepted, whatever verify_sse says: the object is encrypted under
                    // a key the operator did not choose.
                    Some(got) => Err(wrong_kms_key(operation, key, want, got)),
                    None if customer_key_echoed => Err(refused(format!(
                        "asked for the KMS key {want}, the response has no \
                         x-amz-server-side-encryption-aws-kms-key-id"
                    ))),
                    None => Ok(()),
                }
            }
            SseMode::C { keys } => {
                if !customer_key_echoed {
                    return Ok(());
                }
                let wanted = keys
                    .first()
                    .map(SseCKey::key_md5_base64)
                    .unwrap_or_default();
                match echo.customer_key_md5 {
                    Some(got) if got == wanted => Ok(()),
                    Some(got) => Err(refused(format!(
                        "asked for SSE-C with the key of MD5 {wanted}, the server answered {got}"
                    ))),
                    None => Err(refused(
                        "asked for SSE-C, the response has no x-amz-server-side-encryption-customer-key-MD5"
                            .into(),
                    )),
                }
            }
        }
    }
}

/// The server-side encryption an object is stored with, as HEAD and GET report it
/// (`x-amz-server-side-encryption`, `...-aws-kms-key-id`, `...-customer-key-MD5`). Stores that
/// apply SSE themselves (memory, directory) record it at write time and check SSE-C reads
/// against it, as S3 does.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ObjectSse {
    /// Stored without SSE (or the server does not say).
    #[default]
    None,
    /// SSE-S3.
    S3,
    /// SSE-KMS with this key (`None` when the server does not name it).
    Kms { key_id: Option<String> },
    /// SSE-C with the key whose MD5 (base64) this is.
    C { key_md5: String },
}

impl ObjectSse {
    /// From the SSE headers of a HEAD or GET answer.
    pub fn from_headers(
        server_side_encryption: Option<&str>,
        kms_key_id: Option<&str>,
        customer_key_md5: Option<&str>,
    ) -> ObjectSse {
        if let Some(md5) = customer_key_md5.filter(|m| !m.is_empty()) {
            return ObjectSse::C {
                key_md5: md5.to_owned(),
            };
        }
        match server_side_encryption {
            Some(SSE_S3_VALUE) => ObjectSse::S3,
            Some(v) if v.starts_with(SSE_KMS_VALUE) => ObjectSse::Kms {
                key_id: kms_key_id.filter(|k| !k.is_empty()).map(str::to_owned),
            },
            _ => ObjectSse::None,
        }
    }

    /// The mode's name as the config spells it.
    pub fn name(&self) -> &'static str {
        match self {
            ObjectSse::None => "none",
            ObjectSse::S3 => "s3",
            ObjectSse::Kms { .. } => "kms",
            ObjectSse::C { .. } => "c",
        }
    }
}

impl SseMode {
    /// The SSE an object written in this mode is stored with (SSE-C: the first key's).
    pub fn object_sse(&self) -> ObjectSse {
        match self {
            SseMode::None => ObjectSse::None,
            SseMode::S3 => ObjectSse::S3,
            SseMode::Kms { key_id, .. } => ObjectSse::Kms {
                key_id: key_id.clone(),
            },
            SseMode::C { keys } => match keys.first() {
                Some(k) => ObjectSse::C {
                    key_md5: k.key_md5_base64().to_owned(),
                },
                None => ObjectSse::None,
            },
        }
    }

    /// The one check that stays with `verify_sse` off: a response that names a KMS key other
    /// than the configured one is refused (a missing or different algorithm is accepted there).
    pub fn check_kms_key_named(
        &self,
        operation: &str,
        key: &str,
        echo: &SseEcho<'_>,
    ) -> StoreResult<()> {
        match (self, echo.kms_key_id) {
            (
                SseMode::Kms {
                    key_id: Some(want), ..
                },
                Some(got),
            ) if !kms_key_matches(want, got) => Err(wrong_kms_key(operation, key, want, got)),
            _ => Ok(()),
        }
    }

    /// S3's SSE-C read rule, for the stores that apply it themselves: a request for an object
    /// stored as `stored` is tried with each read key in order (once without a key in other
    /// modes), as `S3Store` does. Returns the outcome and how many requests that took; on
    /// failure the first key's error. `operation` names the request (`GetObject`, ...).
    pub fn check_read(
        &self,
        operation: &str,
        key: &str,
        stored: &ObjectSse,
    ) -> (StoreResult<()>, u64) {
        let keys = self.read_keys();
        if keys.is_empty() {
            return (check_customer_key(operation, key, stored, None), 1);
        }
        let first_error = match check_customer_key(operation, key, stored, keys.first()) {
            Ok(()) => return (Ok(()), 1),
            Err(e) => e,
        };
        for (i, sse_key) in keys.iter().enumerate().skip(1) {
            if check_customer_key(operation, key, stored, Some(sse_key)).is_ok() {
                return (Ok(()), i as u64 + 1);
            }
        }
        (Err(first_error), keys.len() as u64)
    }
}

/// Whether the KMS key a response names (`got`: a key id, key ARN, alias or alias ARN) is the
/// configured one (`want`, in any of those forms). Equal strings match; a bare id or alias
/// matches an ARN that ends with it (`1234...` and `arn:aws:kms:REGION:ACCOUNT:key/1234...`,
/// `alias/x` and `arn:aws:kms:...:alias/x`); two ARNs must be equal. S3 names the key itself
/// (its ARN), never the alias it was asked for, and which key an alias points to takes a KMS
/// call: a configured alias therefore matches any key the response names (the algorithm is
/// still checked), and only another alias that differs from it is a mismatch.
pub fn kms_key_matches(want: &str, got: &str) -> bool {
    /// The part after the ARN prefix (`key/ID`, `alias/NAME`), or the whole value.
    fn resource(id: &str) -> (&str, bool) {
        match id.strip_prefix("arn:") {
            Some(rest) => (rest.rsplit(':').next().unwrap_or(rest), true),
            None => (id, false),
        }
    }
    /// `key/ID` and a bare `ID` are the same key.
    fn normalized(resource: &str) -> &str {
        resource.strip_prefix("key/").unwrap_or(resource)
    }
    if want == got {
        return true;
    }
    let (want_resource, want_arn) = resource(want);
    let (got_resource, got_arn) = resource(got);
    let (want_resource, got_resource) = (normalized(want_resource), normalized(got_resource));
    let want_alias = want_resource.starts_with("alias/");
    let got_alias = got_resource.starts_with("alias/");
    if want_alias && !got_alias {
        return true;
    }
    !(want_arn && got_arn) && want_resource == got_resource
}

fn wrong_kms_key(operation: &str, key: &str, want: &str, got: &str) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{operation} was encrypted by the server under the KMS key {got}, not the \
                 configured {want}: the object is not stored as asked (check the bucket's \
                 default encryption and the key id)"
            ),
        ),
    }
}

/// One request's SSE-C check, with the answers S3 gives (and `S3Store` maps them to): an
/// SSE-C object read without a key, or a plain object read with one, is 400 InvalidRequest
/// (`InvalidArgument`); an SSE-C object read with another key is 403 (`AccessDenied`).
pub fn check_customer_key(
    operation: &str,
    key: &str,
    stored: &ObjectSse,
    sent: Option<&SseCKey>,
) -> StoreResult<()> {
    match (stored, sent) {
        (ObjectSse::C { key_md5 }, None) => Err(StoreError::InvalidArgument(format!(
            "{operation} {key}: the object is stored with SSE-C (key MD5 {key_md5}); the request \
             must carry that key (InvalidRequest, HTTP 400): mount with sse = \"c\" and its key file"
        ))),
        (ObjectSse::C { key_md5 }, Some(sent)) if sent.key_md5_base64() != key_md5 => {
            Err(StoreError::AccessDenied {
                key: key.to_owned(),
                reason: format!(
                    "{operation}: the object is stored with the SSE-C key of MD5 {key_md5}, not \
                     {} from {} (HTTP 403); add the object's key file to sse_c_key_files",
                    sent.key_md5_base64(),
                    sent.source()
                ),
            })
        }
        (ObjectSse::C { .. }, Some(_)) => Ok(()),
        (_, Some(_)) => Err(StoreError::InvalidArgument(format!(
            "{operation} {key}: the encryption parameters are not applicable to this object: it \
             is not stored with SSE-C (InvalidRequest, HTTP 400)"
        ))),
        (_, None) => Ok(()),
    }
}

/// The SSE fields of a write response.
#[derive(Clone, Copy, Debug, Default)]
pub struct SseEcho<'a> {
    /// `x-amz-server-side-encryption`.
    pub server_side_encryption: Option<&'a str>,
    /// `x-amz-server-side-encryption-customer-key-MD5`.
    pub customer_key_md5: Option<&'a str>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub kms_key_id: Option<&'a str>,
}

/// One SSE-C key: 32 bytes, zeroized on drop, with the base64 forms S3's headers carry.
#[derive(Clone)]
pub struct SseCKey {
    key: Zeroizing<[u8; 32]>,
    key_base64: Zeroizing<String>,
    key_md5_base64: String,
    /// Where the key came from (a path), for messages. Never key material.
    source: String,
}

impl SseCKey {
    /// A key from its 32 bytes; `source` names where it came from, for messages.
    pub fn from_bytes(bytes: &[u8], source: &str) -> StoreResult<SseCKey> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            StoreError::InvalidArgument(format!(
                "SSE-C key from {source} is {} bytes; it must be 32 (AES-256)",
                bytes.len()
            ))
        })?;
        let key = Zeroizing::new(key);
        let key_base64 = Zeroizing::new(BASE64.encode(&key[..]));
        let key_md5_base64 = BASE64.encode(Md5::digest(&key[..]));
        Ok(SseCKey {
            key,
            key_base64,
            key_md5_base64,
            source: source.to_owned(),
        })
    }

    /// Reads a key file: 32 raw bytes, 64 hex digits or the base64 of 32 bytes (text forms may
    /// end with a newline). The file must be a regular file that neither group nor others may
    /// access (mode 0600 or stricter), as for ssh keys, owned by the running user or root, and
    /// not a symbolic link (it is opened with `O_NOFOLLOW`), as the vault's key files.
    pub fn from_file(path: &Path) -> StoreResult<SseCKey> {
        let shown = path.display().to_string();
        let io_error = |source: std::io::Error| StoreError::Io {
            key: format!("SSE-C key file {shown}"),
            source,
        };
        let invalid = |msg: String| StoreError::InvalidArgument(format!("SSE-C key file {msg}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    invalid(format!(
                        "{shown} is a symbolic link, which is refused: give the path of the file \
                         itself"
                    ))
                } else {
                    io_error(e)
                }
            })?;
        let meta = file.metadata().map_err(io_error)?;
        if !meta.is_file() {
            return Err(invalid(format!("{shown} is not a regular file")));
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(invalid(format!(
                "{shown} is owned by uid {}, not by the user running s3cryptfs (uid {me}) or \
                 root: another user could change it; chown it",
                meta.uid()
            )));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "{shown} is accessible by group or others (mode {mode:04o}); chmod 600 it"
            )));
        }
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(invalid(format!(
                "{shown} is {} bytes; a key file holds 32 raw bytes, 64 hex digits or 44 base64 \
                 characters",
                meta.len()
            )));
        }
        let mut contents = Zeroizing::new(Vec::with_capacity(128));
        file.take(MAX_KEY_FILE_BYTES)
            .read_to_end(&mut contents)
            .map_err(io_error)?;
        SseCKey::parse(&contents, &shown)
    }

    /// Parses the contents of a key file (see [`SseCKey::from_file`]).
    pub fn parse(contents: &[u8], source: &str) -> StoreResult<SseCKey> {
        let text = contents.trim_ascii();
        if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text, &mut key[..]).map_err(|_| {
                StoreError::InvalidArgument(format!("SSE-C key file {source}: invalid hex"))
            })?;
            return SseCKey::from_bytes(&key[..], source);
        }
        if matches!(text.len(), 43 | 44) {
            if let Ok(decoded) = BASE64.decode(text).map(Zeroizing::new) {
                if decoded.len() == 32 {
                    return SseCKey::from_bytes(&decoded, source);
                }
            }
        }
        if contents.len() == 32 {
            return SseCKey::from_bytes(contents, source);
        }
        Err(StoreError::InvalidArgument(format!(
            "SSE-C key file {source} holds {} bytes that are not a key: write 32 raw bytes, 64 hex \
             digits or the base64 of 32 bytes (e.g. `openssl rand 32 > FILE; chmod 600 FILE`)",
            contents.len()
        )))
    }

    /// The raw key (for stores that enforce SSE-C themselves).
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The key as `x-amz-server-side-encryption-customer-key` carries it.
    pub fn key_base64(&self) -> &str {
        &self.key_base64
    }

    /// `x-amz-server-side-encryption-customer-key-MD5`: base64 of the key's MD5, the
    /// fingerprint S3 echoes and stores. Not secret.
    pub fn key_md5_base64(&self) -> &str {
        &self.key_md5_base64
    }

    /// Where the key was read from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for SseCKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseCKey")
            .field("source", &self.source)
            .field("key_md5", &self.key_md5_base64)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SseCKey {
    /// Keys are equal when their fingerprints are (comparing MD5s avoids touching the key).
    fn eq(&self, other: &Self) -> bool {
        self.key_md5_base64 == other.key_md5_base64
    }
}

impl Eq for SseCKey {}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
