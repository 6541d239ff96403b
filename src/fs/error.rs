//! `FsError`: what the file system layer can fail with, and the one table that maps it (and
//! the errors of the components it wraps) to errno.
//!
//! An object changed by another client under an open file or a conditional copy is ESTALE,
//! as mountpoint-s3 answers the same case: the caller's view is stale, the data is not
//! corrupt (EIO stays for what cannot be read or written).

use crate::crypto::CryptoError;
use crate::sealed::SealedError;
use crate::store::StoreError;

use super::namespace::NamespaceError;
use super::read::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("is a directory")]
    IsDir,
    #[error("not a directory")]
    NotDir,
    #[error("operation not permitted: {0}")]
    NotPermitted(String),
    #[error("operation not supported: {0}")]
    NotSupported(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("file name too long")]
    NameTooLong,
    #[error("read-only file system")]
    ReadOnly,
    #[error("file too large")]
    TooLarge,
    #[error("bad file handle")]
    BadHandle,
    /// An extended attribute that is not there.
    #[error("no such extended attribute")]
    NoAttribute,
    /// An extended attribute name that is empty or longer than 255 bytes.
    #[error("extended attribute name out of range")]
    AttributeName,
    /// An extended attribute value over 64 KiB.
    #[error("extended attribute value too large")]
    AttributeTooLarge,
    /// More extended attributes than a file may hold.
    #[error("no space: {0}")]
    NoSpace(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error("object {key}: {source}")]
    Crypto {
        key: String,
        #[source]
        source: CryptoError,
    },
    #[error("object {key} was changed by another client while open")]
    Conflict { key: String },
    #[error("local staging: {0}")]
    Staging(String),
    /// A bug or a panicked task: reported as EIO rather than answered with wrong data.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ReadError> for FsError {
    fn from(e: ReadError) -> FsError {
        match e {
            ReadError::Store(e) => FsError::Store(e),
            ReadError::Crypto { key, source } => FsError::Crypto { key, source },
            ReadError::Conflict { key } => FsError::Conflict { key },
            ReadError::Internal(reason) => FsError::Internal(reason),
        }
    }
}

impl From<SealedError> for FsError {
    /// A version that is no longer at its key is the same conflict as anywhere else.
    fn from(e: SealedError) -> FsError {
        match e {
            SealedError::Changed { key } => FsError::Conflict { key },
            SealedError::Crypto { key, source } => FsError::Crypto { key, source },
            SealedError::Store(e) => FsError::Store(e),
            SealedError::Internal(reason) => FsError::Internal(reason),
        }
    }
}

impl FsError {
    /// The errno the kernel is answered with: the only errno table of the file system.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::IsDir => libc::EISDIR,
            FsError::NotDir => libc::ENOTDIR,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::NotSupported(_) => libc::EOPNOTSUPP,
            FsError::InvalidArgument(_) => libc::EINVAL,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::ReadOnly => libc::EROFS,
            FsError::TooLarge => libc::EFBIG,
            FsError::BadHandle => libc::EBADF,
            FsError::NoAttribute => libc::ENODATA,
            FsError::AttributeName => libc::ERANGE,
            FsError::AttributeTooLarge => libc::E2BIG,
            FsError::NoSpace(_) => libc::ENOSPC,
            FsError::Store(StoreError::NotFound { .. }) => libc::ENOENT,
            FsError::Store(StoreError::AccessDenied { .. }) => libc::EACCES,
            FsError::Store(_) => libc::EIO,
            FsError::Namespace(NamespaceError::UnknownInode(_)) => libc::ENOENT,
            FsError::Conflict { .. } => libc::ESTALE,
            FsError::Crypto { .. } | FsError::Staging(_) => libc::EIO,
            FsError::Internal(_) => libc::EIO,
        }
    }

    /// Errors an operator must see (lost access, corrupt data); the rest are ordinary results
    /// of ordinary calls (ENOENT, EEXIST, ...).
    pub fn is_serious(&self) -> bool {
        matches!(
            self,
            FsError::Crypto { .. }
                | FsError::Conflict { .. }
                | FsError::Staging(_)
                | FsError::Internal(_)
        ) || matches!(self, FsError::Store(e) if !matches!(e, StoreError::NotFound { .. }))
    }
}

pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let cases = [
            (FsError::NotFound, libc::ENOENT),
            (
                FsError::Namespace(NamespaceError::UnknownInode(7)),
                libc::ENOENT,
            ),
            (FsError::Conflict { key: "k".into() }, libc::ESTALE),
            (FsError::Exists, libc::EEXIST),
            (FsError::ReadOnly, libc::EROFS),
            (FsError::Staging("disk full".into()), libc::EIO),
            (FsError::NotSupported("xattrs".into()), libc::ENOTSUP),
            (FsError::NoAttribute, libc::ENODATA),
            (FsError::AttributeName, libc::ERANGE),
            (FsError::AttributeTooLarge, libc::E2BIG),
            (FsError::NoSpace("xattrs".into()), libc::ENOSPC),
        ];
        for (e, errno) in cases {
            assert_eq!(e.errno(), errno, "{e}");
        }
        // The log line of a conflict names the object.
        let e = FsError::Conflict {
            key: "vault/dir/file".into(),
        };
        assert!(e.to_string().contains("vault/dir/file"), "{e}");
        assert!(e.is_serious());
    }
}
