//! The store conformance suite (`tests/conformance/`, instantiated by
//! `fast::store_conformance`) for S3Store over HTTP on moto's S3 server and on s3rver (whose
//! listings carry no ETags); where a server differs from S3, `common::store::Quirks::MOTO` and
//! `Quirks::S3RVER` say how.

crate::fast::store_conformance::conformance_tests!(s3);
// s3rver 3.7 implements too little of S3 for the whole suite (docs/SERVERS.md lists what it
// lacks: conditional requests, multipart rules, ListMultipartUploads, SSE, max-keys with a
// delimiter, a range ending at byte 0, keys with empty segments or long names). These are the
// checks of the suite it passes; the FUSE scenarios run on it in `s3::fuse_s3rver`.
crate::fast::store_conformance::backend_tests!(
    s3rver,
    [
        missing_objects,
        head_returns_metadata_and_list_does_not,
        etags_follow_content,
        bad_continuation_token,
        deletes,
        batch_deletes,
        copy_with_metadata_directives,
        copy_onto_itself,
        sse_c_objects_answer_only_to_their_key,
        sse_c_key_rotation,
    ]
);
