//! What is wrong with a config file, a flag or a mount option: one error type for the whole
//! configuration step, each variant naming the field, option or file at fault so the message
//! says what to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, unknown fields and wrong types (toml's message names the field and line).
    #[error("config {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("config: field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("mount option {option:?}: {reason}")]
    MountOption { option: String, reason: String },
    /// A malformed store URL given on the command line.
    #[error("{0}")]
    StoreUrl(String),
    /// Something the command needs and neither the command line nor the config supplied.
    #[error("{0}")]
    Missing(String),
}

impl ConfigError {
    pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

pub type ConfigResult<T> = Result<T, ConfigError>;
