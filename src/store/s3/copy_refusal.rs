//! Which refusals of a server-side copy the store answers by copying through this process
//! ([`CopyRefusal`]); `client_copy` does that copy.
//!
//! Only the refusals of servers known not to implement a copy (Ceph RGW 16: 501, or 400 to an
//! SSE-C source) qualify; every other failure is reported as it is.

use crate::store::{CopyOptions, MetadataDirective, SseMode};

/// Why a server-side copy is left to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum CopyRefusal {
    /// 501 NotImplemented (RGW 16: SSE-C and SSE-KMS sources).
    NotImplemented,
    /// 400 to a copy whose source needs an SSE-C key, once every key was tried.
    SseCSource,
}

impl CopyRefusal {
    /// The refusals a client-side copy stands in for; `None` for every other failure (which
    /// the caller reports as it is).
    pub(super) fn classify(
        status: Option<u16>,
        sse: &SseMode,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
    ) -> Option<CopyRefusal> {
        match status {
            Some(501) => Some(CopyRefusal::NotImplemented),
            // A copy onto itself that changes nothing is refused by S3's own rule, which a GET
            // + PUT would not reproduce.
            Some(400)
                if matches!(sse, SseMode::C { .. })
                    && !(src == dst && matches!(opts.metadata, MetadataDirective::Copy)) =>
            {
                Some(CopyRefusal::SseCSource)
            }
            _ => None,
        }
    }

    pub(super) fn explain(self) -> &'static str {
        match self {
            CopyRefusal::NotImplemented => "answered 501 NotImplemented to CopyObject",
            CopyRefusal::SseCSource => "refused (400) to copy an SSE-C object server-side",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SseCKey;

    fn sse_c() -> SseMode {
        let key = SseCKey::from_bytes(&[7u8; 32], "test").expect("32 bytes");
        SseMode::C { keys: vec![key] }
    }

    fn replace() -> CopyOptions {
        CopyOptions {
            metadata: MetadataDirective::Replace(Default::default()),
            source_if_match: None,
            source_size: None,
        }
    }

    #[test]
    fn only_refused_copies_fall_back() {
        let copy = CopyOptions::default();
        let classify = |status, sse: &SseMode, src, dst, opts: &CopyOptions| {
            CopyRefusal::classify(Some(status), sse, src, dst, opts)
        };
        // 501 in any mode.
        for sse in [SseMode::None, sse_c()] {
            assert_eq!(
                classify(501, &sse, "a", "b", &copy),
                Some(CopyRefusal::NotImplemented)
            );
        }
        // 400 only where the source needs an SSE-C key.
        assert_eq!(
            classify(400, &sse_c(), "a", "b", &copy),
            Some(CopyRefusal::SseCSource)
        );
        assert_eq!(
            classify(400, &sse_c(), "a", "a", &replace()),
            Some(CopyRefusal::SseCSource)
        );
        assert_eq!(classify(400, &SseMode::None, "a", "b", &copy), None);
        // A copy onto itself without new metadata is S3's own refusal.
        assert_eq!(classify(400, &sse_c(), "a", "a", &copy), None);
        // Missing source, failed condition, denied, transient: reported as they are.
        for status in [403, 404, 412, 500, 503] {
            assert_eq!(
                classify(status, &sse_c(), "a", "b", &copy),
                None,
                "{status}"
            );
        }
        assert_eq!(CopyRefusal::classify(None, &sse_c(), "a", "b", &copy), None);
    }
}
