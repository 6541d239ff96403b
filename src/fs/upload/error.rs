//! `UploadError`: what writing, staging and uploading a file can fail with. It becomes an
//! [`FsError`] (and so an errno) in one place, the `From` impl below, variant for variant.

use crate::crypto::CryptoError;
use crate::sealed::SealedError;
use crate::store::StoreError;

use super::super::error::FsError;
use super::super::read::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("object {key}: {source}")]
    Crypto {
        key: String,
        #[source]
        source: CryptoError,
    },
    /// The object was replaced by another client since the file was opened (`If-Match`).
    #[error("object {key} was changed by another client while open")]
    Conflict { key: String },
    /// Reading the base version's blocks (to overlay or re-seal them) failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file would need more parts than a multipart upload allows.
    #[error("file too large")]
    TooLarge,
    #[error("local staging: {0}")]
    Staging(String),
    /// A bug or a panicked task: reported rather than uploading wrong data.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type UploadResult<T> = Result<T, UploadError>;

impl UploadError {
    /// The store refused the upload's condition: another client replaced the object.
    pub fn is_conflict(&self) -> bool {
        matches!(self, UploadError::Conflict { .. })
    }

    pub fn crypto(key: &str, source: CryptoError) -> Self {
        UploadError::Crypto {
            key: key.to_string(),
            source,
        }
    }
}

impl From<SealedError> for UploadError {
    fn from(e: SealedError) -> UploadError {
        match e {
            SealedError::Changed { key } => UploadError::Conflict { key },
            SealedError::Crypto { key, source } => UploadError::Crypto { key, source },
            SealedError::Store(e) => UploadError::Store(e),
            SealedError::Internal(reason) => UploadError::Internal(reason),
        }
    }
}

impl From<UploadError> for FsError {
    fn from(e: UploadError) -> FsError {
        match e {
            UploadError::Store(e) => FsError::Store(e),
            UploadError::Crypto { key, source } => FsError::Crypto { key, source },
            UploadError::Conflict { key } => FsError::Conflict { key },
            UploadError::Read(e) => e.into(),
            UploadError::TooLarge => FsError::TooLarge,
            UploadError::Staging(reason) => FsError::Staging(reason),
            UploadError::Internal(reason) => FsError::Internal(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (UploadError, fn(&FsError) -> bool);

    #[test]
    fn each_upload_error_becomes_its_fs_error() {
        let key = || "k".to_string();
        let cases: Vec<Case> = vec![
            (
                UploadError::Conflict { key: key() },
                |e| matches!(e, FsError::Conflict { key } if key == "k"),
            ),
            (UploadError::TooLarge, |e| matches!(e, FsError::TooLarge)),
            (UploadError::Staging("full".into()), |e| {
                matches!(e, FsError::Staging(_))
            }),
            (
                UploadError::crypto("k", CryptoError::Corrupt("x".into())),
                |e| matches!(e, FsError::Crypto { .. }),
            ),
            (UploadError::Read(ReadError::Conflict { key: key() }), |e| {
                matches!(e, FsError::Conflict { .. })
            }),
            (
                UploadError::Store(StoreError::NotFound { key: key() }),
                |e| matches!(e, FsError::Store(StoreError::NotFound { .. })),
            ),
        ];
        for (err, is_expected) in cases {
            let shown = err.to_string();
            let fs: FsError = err.into();
            assert!(is_expected(&fs), "{shown} became {fs:?}");
        }
    }
}
