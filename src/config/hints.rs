//! What to change, in the words of the command line and the config file, when the store
//! refuses: the store's errors say what went wrong ([`StoreError::NoSuchBucket`],
//! [`StoreError::WrongRegion`], ...) and this module says which flag or field fixes it.
//!
//! The front appends these hints wherever a store error reaches the user (exit messages and
//! `doctor` lines), so the store itself names no flag.

use crate::store::{S3Setting, StoreError};

/// The store error's message followed by what to change, if there is a flag or setting for it.
pub fn describe_store_error(e: &StoreError) -> String {
    let mut text = e.to_string();
    if let Some(hint) = store_hint(e) {
        text.push_str(&hint);
    }
    text
}

/// The hint for `e`, starting with its separator (`: ...`, `; ...` or ` (...)`).
pub fn store_hint(e: &StoreError) -> Option<String> {
    Some(match e {
        StoreError::NoCredentials { .. } => ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
            or a profile (AWS_PROFILE, ~/.aws/credentials), or run where a role provides them \
            (web identity, ECS, EC2 instance profile)"
            .to_owned(),
        StoreError::NoSuchBucket { .. } => "; check the bucket name, the endpoint (--endpoint, \
            [store] endpoint) and the region (--region, [store] region)"
            .to_owned(),
        StoreError::WrongRegion {
            bucket_region: Some(r),
            ..
        } => format!(": use --region {r} (or [store] region = \"{r}\")"),
        StoreError::WrongRegion { .. } => {
            "; set --region (or [store] region) to the bucket's region".to_owned()
        }
        StoreError::Unreachable { .. } => "; check the endpoint (--endpoint, [store] endpoint), \
            the network and that the server is running"
            .to_owned(),
        StoreError::SseCOverHttp { .. } => ": use an https:// endpoint (--endpoint, [store] \
            endpoint, AWS_ENDPOINT_URL), or allow it for a test server with \
            --allow-sse-c-over-http ([sse] allow_sse_c_over_http = true)"
            .to_owned(),
        StoreError::S3Only {
            setting: S3Setting::Sse,
            ..
        } => " (use --sse none)".to_owned(),
        StoreError::S3Only {
            setting: S3Setting::Connection,
            ..
        } => " (drop --endpoint, --region and --path-style)".to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_hints_name_the_flag() {
        let e = StoreError::WrongRegion {
            detail: "bucket photos is not in region us-east-1 (PermanentRedirect)".into(),
            bucket_region: Some("eu-west-1".into()),
        };
        let text = describe_store_error(&e);
        assert!(text.contains("--region eu-west-1"), "{text}");
        let e = StoreError::WrongRegion {
            detail: "bucket photos is not in region us-east-1 (AuthorizationHeaderMalformed)"
                .into(),
            bucket_region: None,
        };
        let text = describe_store_error(&e);
        assert!(
            text.contains("us-east-1") && text.contains("--region"),
            "{text}"
        );
    }

    #[test]
    fn credentials_and_endpoint_hints() {
        let e = StoreError::NoCredentials {
            store: "s3://b".into(),
            reason: "none in the chain".into(),
        };
        assert!(describe_store_error(&e).contains("AWS_ACCESS_KEY_ID"));
        let e = StoreError::Unreachable {
            key: "k".into(),
            reason: "HeadBucket: cannot reach http://127.0.0.1:1 (connection refused)".into(),
        };
        assert!(e.is_transient());
        assert!(describe_store_error(&e).contains("--endpoint"));
        let e = StoreError::NotFound { key: "k".into() };
        assert_eq!(describe_store_error(&e), e.to_string());
    }
}
