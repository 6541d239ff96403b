//! SDK errors -> [`StoreError`], in one place.
//!
//! Transport failures (timeouts, refused or reset connections, malformed responses), 5xx and
//! throttling become `Transient` (the SDK has already retried them); the S3 error codes the
//! trait has words for map to their variants; the codes an operator must act on (missing
//! bucket, unknown access key, wrong secret, wrong region, unreachable endpoint) get a variant
//! of their own or a message that says what to do. No message names a command-line flag: the
//! front adds those hints (`config::hints`).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::client::S3Store;
use crate::store::{MIN_PART_SIZE, StoreError};

/// What a request was about, for the error it may turn into.
pub(super) struct Request<'a> {
    pub operation: &'static str,
    pub key: &'a str,
    pub bucket: &'a str,
    pub endpoint: &'a str,
    pub region: &'a str,
    pub upload_id: Option<&'a str>,
    /// Requested GET range (start, end exclusive).
    pub range: Option<(u64, u64)>,
    /// Sizes of the parts listed in a CompleteMultipartUpload, where this process knows them.
    pub part_sizes: &'a [(u32, Option<u64>)],
}

impl<'a> Request<'a> {
    pub fn new(operation: &'static str, key: &'a str, store: &'a S3Store) -> Self {
        Request {
            operation,
            key,
            bucket: &store.bucket,
            endpoint: &store.endpoint,
            region: &store.region,
            upload_id: None,
            range: None,
            part_sizes: &[],
        }
    }

    pub fn upload(mut self, upload_id: &'a str) -> Self {
        self.upload_id = Some(upload_id);
        self
    }
}

/// HTTP status of a service error, if the server answered.
pub(super) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(e) => Some(e.raw().status().as_u16()),
        _ => None,
    }
}

pub(super) fn map<E>(req: &Request<'_>, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let key = req.key.to_owned();
    let transient = |reason: String| StoreError::Transient {
        key: req.key.to_owned(),
        reason,
    };
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            // An answer the SDK could not read (no error code) says why in its error chain.
            let message = match (e.code(), e.message()) {
                (None, None) => error_chain(e),
                (_, message) => message.unwrap_or("").to_owned(),
            };
            service_error(req, service.raw(), e.code().unwrap_or(""), &message)
        }
        SdkError::TimeoutError(_) => transient(format!(
            "{} timed out talking to {}",
            req.operation, req.endpoint
        )),
        SdkError::DispatchFailure(failure) => {
            let what = if failure.is_timeout() {
                "timed out connecting to"
            } else if failure.is_io() {
                "cannot reach"
            } else {
                "failed to send the request to"
            };
            StoreError::Unreachable {
                key,
                reason: format!(
                    "{}: {what} {} ({})",
                    req.operation,
                    req.endpoint,
                    DisplayErrorContext(&err)
                ),
            }
        }
        SdkError::ResponseError(_) => transient(format!(
            "{}: unreadable response from {} ({})",
            req.operation,
            req.endpoint,
            DisplayErrorContext(&err)
        )),
        SdkError::ConstructionFailure(_) => StoreError::InvalidArgument(format!(
            "{} {key}: cannot build the request ({})",
            req.operation,
            DisplayErrorContext(&err)
        )),
        _ => StoreError::Io {
            key,
            source: std::io::Error::other(format!(
                "{}: {}",
                req.operation,
                DisplayErrorContext(&err)
            )),
        },
    }
}

fn service_error(req: &Request<'_>, raw: &HttpResponse, code: &str, message: &str) -> StoreError {
    let key = req.key.to_owned();
    let status = raw.status().as_u16();
    let body = raw.body().bytes().unwrap_or_default();
    let said = if message.is_empty() {
        format!("{code} (HTTP {status})")
    } else {
        format!("{code}: {message} (HTTP {status})")
    };
    let access_denied = |reason: String| StoreError::AccessDenied {
        key: req.key.to_owned(),
        reason,
    };
    match code {
        "NoSuchKey" | "NotFound" => StoreError::NotFound { key },
        "NoSuchBucket" => StoreError::NoSuchBucket {
            bucket: req.bucket.to_owned(),
            endpoint: req.endpoint.to_owned(),
        },
        "NoSuchUpload" => StoreError::NoSuchUpload {
            key,
            upload_id: req.upload_id.unwrap_or_default().to_owned(),
        },
        "PreconditionFailed" | "ConditionalRequestConflict" => {
            StoreError::PreconditionFailed { key }
        }
        "InvalidRange" => invalid_range(req, body),
        "EntityTooSmall" => entity_too_small(req, body),
        "InvalidPart" | "InvalidPartOrder" => StoreError::InvalidPart { key, reason: said },
        "InvalidAccessKeyId" => access_denied(format!(
            "the server does not know this access key id (InvalidAccessKeyId at {}); check \
             AWS_ACCESS_KEY_ID, the profile or the credentials in the config",
            req.endpoint
        )),
        "SignatureDoesNotMatch" => access_denied(format!(
            "the request signature does not match (SignatureDoesNotMatch at {}): the secret access \
             key is wrong for this access key id",
            req.endpoint
        )),
        "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => access_denied(format!(
            "the session token was refused ({code}); refresh the credentials"
        )),
        "RequestTimeTooSkewed" => access_denied(format!(
            "this machine's clock differs too much from the server's ({code}); fix the clock"
        )),
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => access_denied(format!(
            "{} was refused: {said}; check the bucket policy and the IAM permissions",
            req.operation
        )),
        "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IllegalLocationConstraintException" => wrong_region(req, raw, &said),
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestTimeout"
        | "InternalError"
        | "ServiceUnavailable"
        | "RequestLimitExceeded"
        | "BandwidthLimitExceeded" => StoreError::Transient {
            key,
            reason: format!("{}: {said}", req.operation),
        },
        _ => match status {
            301 | 307 => wrong_region(req, raw, &said),
            403 => access_denied(format!("{} was refused: {said}", req.operation)),
            404 => StoreError::NotFound { key },
            412 => StoreError::PreconditionFailed { key },
            416 => invalid_range(req, body),
            501 => StoreError::InvalidArgument(format!(
                "{} {key}: the server at {} does not implement this request: {said}",
                req.operation, req.endpoint
            )),
            200..=299 => StoreError::Io {
                key,
                source: std::io::Error::other(format!(
                    "{}: unreadable answer from {}: {said}",
                    req.operation, req.endpoint
                )),
            },
            429 | 500.. => StoreError::Transient {
                key,
                reason: format!("{}: {said}", req.operation),
            },
            _ => StoreError::InvalidArgument(format!(
                "{} {key}: the server refused the request: {said}",
                req.operation
            )),
        },
    }
}

fn wrong_region(req: &Request<'_>, raw: &HttpResponse, said: &str) -> StoreError {
    StoreError::WrongRegion {
        detail: format!(
            "bucket {} is not in region {} ({said})",
            req.bucket, req.region
        ),
        bucket_region: raw.headers().get("x-amz-bucket-region").map(str::to_owned),
    }
}

fn invalid_range(req: &Request<'_>, body: &[u8]) -> StoreError {
    let (start, end) = req.range.unwrap_or_default();
    StoreError::InvalidRange {
        key: req.key.to_owned(),
        start,
        end,
        size: xml_field(body, "ActualObjectSize")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    }
}

/// S3's EntityTooSmall body names the part; servers that leave it out are covered by the part
/// sizes this process recorded when it uploaded them.
fn entity_too_small(req: &Request<'_>, body: &[u8]) -> StoreError {
    let from_body = xml_field(body, "PartNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| {
            let size = xml_field(body, "ProposedSize").and_then(|s| s.parse().ok());
            (n, size)
        });
    let last = req.part_sizes.len().saturating_sub(1);
    let from_sizes = req.part_sizes[..last]
        .iter()
        .find(|(_, size)| size.is_some_and(|s| s < MIN_PART_SIZE))
        .map(|(n, size)| (*n, *size));
    let (part_number, size) = from_body.or(from_sizes).unwrap_or((0, None));
    let size = size.or_else(|| {
        req.part_sizes
            .iter()
            .find(|(n, _)| *n == part_number)
            .and_then(|(_, s)| *s)
    });
    StoreError::EntityTooSmall {
        key: req.key.to_owned(),
        part_number,
        size: size.unwrap_or(0),
    }
}

/// An error and its sources, joined with ": " (without the Debug dump `DisplayErrorContext`
/// appends).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// The text of the first `<name>` element of an S3 error body.
fn xml_field<'b>(body: &'b [u8], name: &str) -> Option<&'b str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find("</")?;
    Some(text[start..start + len].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::primitives::SdkBody;
    use aws_smithy_runtime_api::http::StatusCode;

    fn request() -> Request<'static> {
        Request {
            operation: "GetObject",
            key: "vault/a.txt",
            bucket: "photos",
            endpoint: "https://s3.example",
            region: "us-east-1",
            upload_id: Some("upload-1"),
            range: Some((100, 110)),
            part_sizes: &[(1, Some(5 << 20)), (2, Some(1024)), (3, Some(10))],
        }
    }

    fn answer(status: u16, code: &str, body: &str, header: Option<(&str, &str)>) -> StoreError {
        let status = StatusCode::try_from(status).expect("valid status");
        let mut raw = HttpResponse::new(status, SdkBody::from(body.to_owned()));
        if let Some((name, value)) = header {
            raw.headers_mut().insert(name.to_owned(), value.to_owned());
        }
        service_error(&request(), &raw, code, "the server's message")
    }

    #[test]
    fn credentials_and_bucket_errors_say_what_to_fix() {
        let e = answer(403, "InvalidAccessKeyId", "", None);
        assert!(matches!(&e, StoreError::AccessDenied { .. }), "{e:?}");
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        let e = answer(403, "SignatureDoesNotMatch", "", None);
        assert!(e.to_string().contains("secret access key"), "{e}");
        let e = answer(403, "AccessDenied", "", None);
        assert!(matches!(&e, StoreError::AccessDenied { key, .. } if key == "vault/a.txt"));
        let e = answer(403, "", "", None);
        assert!(
            matches!(e, StoreError::AccessDenied { .. }),
            "HEAD answers carry no code"
        );
        let e = answer(404, "NoSuchBucket", "", None).to_string();
        assert!(
            e.contains("photos") && e.contains("https://s3.example"),
            "{e}"
        );
        // The flag to change is the front's to name (config::hints tests it).
        let e = answer(
            301,
            "PermanentRedirect",
            "",
            Some(("x-amz-bucket-region", "eu-west-1")),
        );
        assert!(
            matches!(&e, StoreError::WrongRegion { bucket_region: Some(r), .. } if r == "eu-west-1"),
            "{e:?}"
        );
        assert!(e.to_string().contains("the bucket is in eu-west-1"), "{e}");
        let e = answer(400, "AuthorizationHeaderMalformed", "", None);
        assert!(
            matches!(&e, StoreError::WrongRegion { detail, bucket_region: None } if detail.contains("us-east-1")),
            "{e:?}"
        );
    }

    #[test]
    fn retryable_answers_are_transient() {
        for (status, code) in [
            (503, "SlowDown"),
            (500, "InternalError"),
            (503, ""),
            (429, ""),
        ] {
            assert!(
                answer(status, code, "", None).is_transient(),
                "{status} {code}"
            );
        }
        for (status, code) in [(400, "InvalidArgument"), (501, "NotImplemented"), (403, "")] {
            assert!(
                !answer(status, code, "", None).is_transient(),
                "{status} {code}"
            );
        }
    }

    #[test]
    fn s3_codes_map_to_their_variants() {
        assert!(matches!(
            answer(404, "", "", None),
            StoreError::NotFound { .. }
        ));
        assert!(matches!(
            answer(412, "", "", None),
            StoreError::PreconditionFailed { .. }
        ));
        let body =
            "<Error><Code>InvalidRange</Code><ActualObjectSize>42</ActualObjectSize></Error>";
        assert!(matches!(
            answer(416, "InvalidRange", body, None),
            StoreError::InvalidRange {
                start: 100,
                end: 110,
                size: 42,
                ..
            }
        ));
        match answer(404, "NoSuchUpload", "", None) {
            StoreError::NoSuchUpload { upload_id, .. } => assert_eq!(upload_id, "upload-1"),
            other => panic!("{other:?}"),
        }
        // The part comes from the body when S3 names it, else from the sizes this process saw.
        let body = "<Error><Code>EntityTooSmall</Code><ProposedSize>7</ProposedSize>\
                    <PartNumber>1</PartNumber></Error>";
        assert!(matches!(
            answer(400, "EntityTooSmall", body, None),
            StoreError::EntityTooSmall {
                part_number: 1,
                size: 7,
                ..
            }
        ));
        assert!(matches!(
            answer(400, "EntityTooSmall", "", None),
            StoreError::EntityTooSmall {
                part_number: 2,
                size: 1024,
                ..
            }
        ));
        assert!(matches!(
            answer(400, "InvalidPartOrder", "", None),
            StoreError::InvalidPart { .. }
        ));
        let e = answer(200, "", "", None);
        assert!(
            matches!(e, StoreError::Io { .. }) && !e.is_transient(),
            "{e:?}"
        );
    }

    #[test]
    fn xml_fields_are_found() {
        let body =
            b"<Error><Code>InvalidRange</Code><ActualObjectSize>100</ActualObjectSize></Error>";
        assert_eq!(xml_field(body, "ActualObjectSize"), Some("100"));
        assert_eq!(xml_field(body, "Code"), Some("InvalidRange"));
        assert_eq!(xml_field(body, "PartNumber"), None);
        assert_eq!(xml_field(b"\xff\xfe", "Code"), None);
    }
}
