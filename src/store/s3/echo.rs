//! What a response says about server-side encryption, read the same way from every SDK output
//! that carries the SSE headers (one trait, implemented by a macro), so each request checks and
//! records the SSE the server confirmed without repeating the field-by-field reading.

use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;

use crate::store::ObjectInfo;
use crate::store::sse::{ObjectSse, SseEcho};

pub(super) trait SseFields {
    /// `x-amz-server-side-encryption`, the SSE-C key MD5 and the KMS key id, for
    /// `S3Store::check_sse`.
    fn sse_echo(&self) -> SseEcho<'_>;
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    fn kms_key_id(&self) -> Option<&str>;

    /// `info` with the SSE this response reports.
    fn with_sse_of(&self, mut info: ObjectInfo) -> ObjectInfo {
        let echo = self.sse_echo();
        info.sse = Some(ObjectSse::from_headers(
            echo.server_side_encryption,
            self.kms_key_id(),
            echo.customer_key_md5,
        ));
        info
    }
}

macro_rules! sse_fields {
    ($($output:ty),* $(,)?) => {$(
        impl SseFields for $output {
            fn sse_echo(&self) -> SseEcho<'_> {
                SseEcho {
                    server_side_encryption: self.server_side_encryption().map(|s| s.as_str()),
                    customer_key_md5: self.sse_customer_key_md5(),
                    kms_key_id: self.ssekms_key_id(),
                }
            }

            fn kms_key_id(&self) -> Option<&str> {
                self.ssekms_key_id()
            }
        }
    )*};
}

sse_fields!(
    PutObjectOutput,
    CreateMultipartUploadOutput,
    UploadPartOutput,
    CopyObjectOutput,
    HeadObjectOutput,
    GetObjectOutput,
);
