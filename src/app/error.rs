//! [`AppError`]: what any command can fail with, as the front sees it, and how it is told to
//! the user ([`describe`]).
//!
//! The layers keep their own errors (`ConfigError`, `VaultError`, `MountError`, `ToolError`);
//! this enum only gathers them, so that `exit::code` maps every failure in one place. Store
//! errors anywhere in the chain get the flag or config field that fixes them appended
//! (`config::hints`): the store names no flag itself.

use std::error::Error;

use crate::config::ConfigError;
use crate::config::hints::store_hint;
use crate::mount::MountError;
use crate::store::StoreError;
use crate::tools::ToolError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A bad command line that clap could not catch.
    #[error("{0}")]
    Usage(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
        let what = what.into();
        move |source| AppError::Io { what, source }
    }
}

/// An error and its sources on one line (skipping sources whose text the message already
/// contains), followed by the hint for a store error among them.
pub fn describe(err: &(dyn Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut hint = None;
    let mut link = Some(err);
    while let Some(e) = link {
        let text = e.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        if let Some(store) = e.downcast_ref::<StoreError>() {
            hint = hint.or_else(|| store_hint(store));
        }
        link = e.source();
    }
    if let Some(hint) = hint {
        message.push_str(&hint);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_get_their_flag_hint() {
        let e = AppError::Mount(MountError::Store {
            url: "s3://photos/v/".into(),
            source: StoreError::WrongRegion {
                detail: "bucket photos is not in region us-east-1 (PermanentRedirect)".into(),
                bucket_region: Some("eu-west-1".into()),
            },
        });
        let text = describe(&e);
        assert!(
            text.starts_with("store s3://photos/v/: bucket photos"),
            "{text}"
        );
        assert!(text.ends_with(": use --region eu-west-1 (or [store] region = \"eu-west-1\")"));
        let e = AppError::Usage("bad".into());
        assert_eq!(describe(&e), "bad");
    }
}
