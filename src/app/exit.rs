//! Exit statuses: the one table, and the one mapping from [`AppError`] to it.
//!
//! `s3cryptfs`: 0 success, 1 error (or problems found), 2 bad command line or config (clap
//! exits with 2 itself; also a vault config rollback, which only a flag or config setting
//! accepts), 3 wrong key (also: KMS refused to open the vault's KMS slot), 4 KMS could not be
//! reached; a background mount whose daemon failed exits with the
//! daemon's status. `mount.s3cryptfs` follows mount(8): 1 bad command line or config, 32 any
//! other failure. `s3cryptfs --help` and tests/cli_errors.rs document the same numbers.

use super::error::{AppError, describe};
use crate::mount::{Failure, MountError};
use crate::tools::ToolError;

pub const SUCCESS: i32 = 0;
/// Any failure not listed below, and a tool that found problems.
pub const FAILURE: i32 = 1;
/// A bad command line (clap's status too) or config, or a vault config rollback refused.
pub const USAGE: i32 = 2;
/// The key file or passphrase does not unlock the vault, or KMS refuses to (the key is
/// disabled, pending deletion, not found, or access is denied).
pub const WRONG_KEY: i32 = 3;
/// KMS could not be reached to unlock the vault (endpoint unreachable, KMS unavailable).
pub const KMS_UNREACHABLE: i32 = 4;

/// mount(8)'s status for incorrect invocation (`mount.s3cryptfs`).
pub const MOUNT8_USAGE: i32 = 1;
/// mount(8)'s status for a mount failure (`mount.s3cryptfs`).
pub const MOUNT8_FAILURE: i32 = 32;

/// The exit status of `s3cryptfs` for `e`.
pub fn code(e: &AppError) -> i32 {
    match e {
        AppError::Usage(_)
        | AppError::Config(_)
        | AppError::Mount(MountError::Config(_))
        | AppError::Tool(ToolError::Usage(_)) => USAGE,
        // A config rollback is accepted only by a flag or config setting.
        AppError::Vault(v)
        | AppError::Mount(MountError::Vault(v))
        | AppError::Tool(ToolError::Vault(v))
            if v.is_rollback() =>
        {
            USAGE
        }
        AppError::Vault(v)
        | AppError::Mount(MountError::Vault(v))
        | AppError::Tool(ToolError::Vault(v))
            if v.is_wrong_key() || v.is_kms_refused() =>
        {
            WRONG_KEY
        }
        AppError::Vault(v)
        | AppError::Mount(MountError::Vault(v))
        | AppError::Tool(ToolError::Vault(v))
            if v.is_kms_unreachable() =>
        {
            KMS_UNREACHABLE
        }
        AppError::Mount(MountError::Daemon { code, .. }) => *code,
        _ => FAILURE,
    }
}

/// The exit status of `mount.s3cryptfs` for `e`.
pub fn mount8_code(e: &AppError) -> i32 {
    if code(e) == USAGE {
        MOUNT8_USAGE
    } else {
        MOUNT8_FAILURE
    }
}

/// What a background mount that failed tells the process waiting for it: the exit status
/// from the table, and the message.
pub fn daemon_failure(e: MountError) -> Failure {
    let e = AppError::from(e);
    Failure {
        code: code(&e),
        message: describe(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::vault::VaultError;

    fn wrong_key() -> VaultError {
        VaultError::WrongKey {
            location: "x".into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            code(&AppError::Mount(MountError::Vault(wrong_key()))),
            WRONG_KEY
        );
        assert_eq!(
            code(&AppError::Tool(ToolError::Vault(wrong_key()))),
            WRONG_KEY
        );
        let cfg = AppError::Mount(MountError::Config(ConfigError::Missing("m".into())));
        assert_eq!(code(&cfg), USAGE);
        assert_eq!(code(&ConfigError::Missing("m".into()).into()), USAGE);
        assert_eq!(code(&AppError::Usage("u".into())), USAGE);
        assert_eq!(code(&ToolError::Usage("u".into()).into()), USAGE);
        let rollback = || VaultError::Rollback {
            location: "x".into(),
            seen: 2,
            got: 1,
        };
        assert_eq!(code(&AppError::Vault(rollback())), USAGE);
        assert_eq!(code(&AppError::Tool(ToolError::Vault(rollback()))), USAGE);
        assert_eq!(code(&AppError::Mount(MountError::Vault(rollback()))), USAGE);
        assert_eq!(
            mount8_code(&AppError::Mount(MountError::Vault(rollback()))),
            MOUNT8_USAGE
        );
        assert_eq!(code(&MountError::Other("x".into()).into()), FAILURE);
        assert_eq!(code(&ToolError::Problems("p".into()).into()), FAILURE);
        let daemon = MountError::Daemon {
            code: 3,
            message: "m".into(),
        };
        assert_eq!(code(&daemon.into()), 3);
        let kms = |unreachable| VaultError::Kms {
            location: "x".into(),
            reason: "r".into(),
            unreachable,
        };
        assert_eq!(
            code(&AppError::Tool(ToolError::Vault(kms(false)))),
            WRONG_KEY
        );
        assert_eq!(
            code(&AppError::Mount(MountError::Vault(kms(false)))),
            WRONG_KEY
        );
        assert_eq!(
            code(&AppError::Tool(ToolError::Vault(kms(true)))),
            KMS_UNREACHABLE
        );
        assert_eq!(
            code(&AppError::Mount(MountError::Vault(kms(true)))),
            KMS_UNREACHABLE
        );
    }

    #[test]
    fn exit_codes_follow_mount8() {
        assert_eq!(mount8_code(&AppError::Usage("x".into())), MOUNT8_USAGE);
        let daemon = |code| {
            AppError::Mount(MountError::Daemon {
                code,
                message: "m".into(),
            })
        };
        assert_eq!(mount8_code(&daemon(USAGE)), MOUNT8_USAGE);
        assert_eq!(mount8_code(&daemon(WRONG_KEY)), MOUNT8_FAILURE);
        assert_eq!(
            mount8_code(&MountError::Other("x".into()).into()),
            MOUNT8_FAILURE
        );
    }
}
