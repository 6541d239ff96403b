//! One conformance suite for every `ObjectStore`: each test is an `async fn(&Backend)` (in
//! `tests/conformance/`, one file per concern) and `conformance_tests!` below instantiates all
//! of them for one backend of `common/store.rs`: here for MemoryStore and DirStore, in
//! `s3::store_conformance` for S3Store on moto's S3 server and on s3rver over HTTP, and in
//! `ceph::store_conformance` for S3Store on Ceph's RADOS Gateway. The
//! expectations are S3's (ListObjectsV2, conditional requests, multipart limits, CopyObject,
//! SSE), so a new backend is added with one constructor and one `conformance_tests!` line; where
//! a test server legitimately differs from S3, its [`Quirks`] say how, and the test asserts that
//! instead.
//!
//! [`Quirks`]: crate::common::store::Quirks

// ---- instantiation ----

/// One `#[tokio::test]` per (backend, test) pair, in a module per backend. A backend that
/// cannot be set up fails its tests (its constructor panics saying how to install what is
/// missing).
macro_rules! backend_tests {
    ($backend:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = $crate::common::store::$backend().await;
                    $crate::conformance::$test(&backend).await;
                }
            )*
        }
    };
}

pub(crate) use backend_tests;

/// Every test of the suite for `$backend`, in a module of that name.
macro_rules! conformance_tests {
    ($backend:ident) => {
        $crate::fast::store_conformance::backend_tests!(
            $backend,
            [
                ranged_gets,
                empty_object,
                missing_objects,
                get_with_if_match,
                head_returns_metadata_and_list_does_not,
                etags_follow_content,
                objects_markers_and_children_coexist,
                unusual_keys,
                long_keys,
                name_length_boundaries,
                pagination_over_many_keys,
                delimiter_listings,
                common_prefixes_across_pages,
                bad_continuation_token,
                names_only_listings,
                conditional_puts,
                racing_conditional_writes,
                deletes,
                conditional_deletes,
                batch_deletes,
                copy_with_metadata_directives,
                copy_onto_itself,
                multipart_upload,
                multipart_part_rules,
                multipart_unknown_uploads_and_abort,
                pending_uploads_are_listed,
                multipart_conditions_checked_at_completion,
                request_counters,
                sse_s3_and_kms_are_recorded_and_echoed,
                sse_c_objects_answer_only_to_their_key,
                sse_c_key_rotation,
            ]
        );
    };
}

#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
pub(crate) use conformance_tests;

conformance_tests!(memory);
conformance_tests!(dir);
