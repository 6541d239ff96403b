//! The SSE headers each request kind carries: SSE-C customer-key headers on the requests that
//! read or write an object's bytes, and the mount's SSE mode on the requests that create one.
//! One trait per group, implemented for the SDK's request builders by a macro, so every call
//! site says `.sse_c(key)` or `.write_sse(mode)` and the wire-capture test checks the result.

use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::operation::upload_part_copy::builders::UploadPartCopyFluentBuilder;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::store::sse::{SSE_C_ALGORITHM, SseCKey, SseMode};

/// SSE-C request headers, on the requests that take them.
pub(super) trait SseCHeaders: Sized {
    fn sse_c(self, key: Option<&SseCKey>) -> Self;
}

macro_rules! sse_c_headers {
    ($($builder:ty),* $(,)?) => {$(
        impl SseCHeaders for $builder {
            fn sse_c(self, key: Option<&SseCKey>) -> Self {
                match key {
                    None => self,
                    Some(k) => self
                        .sse_customer_algorithm(SSE_C_ALGORITHM)
                        .sse_customer_key(k.key_base64())
                        .sse_customer_key_md5(k.key_md5_base64()),
                }
            }
        }
    )*};
}

sse_c_headers!(
    GetObjectFluentBuilder,
    HeadObjectFluentBuilder,
    PutObjectFluentBuilder,
    CreateMultipartUploadFluentBuilder,
    UploadPartFluentBuilder,
    CopyObjectFluentBuilder,
    UploadPartCopyFluentBuilder,
);

/// The SSE headers of requests that create an object (PutObject, CreateMultipartUpload,
/// CopyObject's destination).
pub(super) trait WriteSse: Sized {
    fn write_sse(self, mode: &SseMode) -> Self;
}

macro_rules! write_sse {
    ($($builder:ty),* $(,)?) => {$(
        impl WriteSse for $builder {
            fn write_sse(self, mode: &SseMode) -> Self {
                match mode {
                    SseMode::None => self,
                    SseMode::S3 => self.server_side_encryption(ServerSideEncryption::Aes256),
                    SseMode::Kms { key_id, bucket_key } => {
                        let req = self
                            .server_side_encryption(ServerSideEncryption::AwsKms)
                            .set_ssekms_key_id(key_id.clone());
                        if *bucket_key { req.bucket_key_enabled(true) } else { req }
                    }
                    SseMode::C { .. } => self.sse_c(mode.write_key()),
                }
            }
        }
    )*};
}

write_sse!(
    PutObjectFluentBuilder,
    CreateMultipartUploadFluentBuilder,
    CopyObjectFluentBuilder,
);
