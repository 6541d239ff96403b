//! The tool subcommands: resolve each one's vault ([`crate::tools::Target`]) and plain
//! arguments from its clap struct, then run it on a small runtime.

use super::error::{AppError, AppResult};
use super::resolve::{self, new_secret_source};
use crate::cli::{GlobalArgs, KeyArgs, KeyCommand, StoreArgs, ToolCommand};
use crate::config::LogLevel;
use crate::tools::keycmd::{KeyRequest, Rotation};
use crate::tools::{Target, cleanup, doctor, files, get, keycmd, put, upgrade, verify};
use crate::vault::secret::SecretSource;

/// Run one of the tool subcommands.
pub fn run(global: &GlobalArgs, command: &ToolCommand) -> AppResult<()> {
    // Tools are quiet unless asked: warnings and errors only.
    init_logging(global.log_level.unwrap_or(LogLevel::Warn));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("s3cryptfs-tool")
        .enable_all()
        .build()
        .map_err(AppError::io("cannot start the async runtime"))?;
    let result = match command {
        ToolCommand::Key(cmd) => {
            let (store, keys, mut request) = key_request(cmd);
            let t = target(global, store, Some(keys), store.store_url.clone(), "key")?;
            if let (KeyCommand::Add(a), KeyRequest::Add { new_secret, .. }) = (cmd, &mut request) {
                if let Some(id) = &a.new_kms_key_id {
                    // Endpoint and region as resolved for the vault.
                    *new_secret =
                        SecretSource::Kms(resolve::kms_secret(&t.settings.kms, Some(id.clone())));
                }
            }
            rt.block_on(keycmd::run(&t, &request))
        }
        ToolCommand::Verify(a) => {
            let (url, path) = a.operands();
            let t = target(global, &a.store, Some(&a.keys), url, "verify")?;
            rt.block_on(verify::run(&t, path.as_deref(), a.deep, a.json))
        }
        ToolCommand::Upgrade(a) => {
            let t = target(
                global,
                &a.store,
                Some(&a.keys),
                a.store.store_url.clone(),
                "upgrade",
            )?;
            rt.block_on(upgrade::run(&t, a.json))
        }
        ToolCommand::Ls(a) => {
            let (url, path) = a.operands();
            let t = target(global, &a.store, Some(&a.keys), url, "ls")?;
            rt.block_on(files::run_ls(&t, path.as_deref(), a.long))
        }
        ToolCommand::Cat(a) => {
            let (url, paths) = a.operands();
            let t = target(global, &a.store, Some(&a.keys), url, "cat")?;
            rt.block_on(files::run_cat(&t, &paths))
        }
        ToolCommand::Get(a) => {
            let (url, src, dest) = a.operands().map_err(AppError::Usage)?;
            let t = target(global, &a.store, Some(&a.keys), url, "get")?;
            rt.block_on(get::run_get(&t, &src, &dest))
        }
        ToolCommand::Put(a) => {
            let (url, src, dest) = a.operands().map_err(AppError::Usage)?;
            let (settings, secret) =
                resolve::vault(a.config.as_deref(), &a.overrides(url, global), "put")?;
            let t = Target {
                settings,
                plain: false,
                secret,
            };
            rt.block_on(put::run_put(&t, &src, &dest))
        }
        ToolCommand::Doctor(a) => {
            let (settings, secret) =
                resolve::vault(a.config.as_deref(), &a.overrides(global), "doctor")?;
            rt.block_on(doctor::run(&settings, &secret))
        }
        ToolCommand::Cleanup(a) => {
            let t = target(global, &a.store, None, a.store.store_url.clone(), "cleanup")?;
            rt.block_on(cleanup::run(&t, a.older_than, a.dry_run))
        }
    };
    Ok(result?)
}

/// The vault of a tool: its store flags and config file, `url` being the store URL operand.
fn target(
    global: &GlobalArgs,
    store: &StoreArgs,
    keys: Option<&KeyArgs>,
    url: Option<String>,
    command: &str,
) -> AppResult<Target> {
    let overrides = store.overrides(url, keys, global);
    let (settings, secret) = resolve::vault(store.config.as_deref(), &overrides, command)?;
    Ok(Target {
        settings,
        plain: store.plain,
        secret,
    })
}

/// A `key` subcommand's store and unlock flags, and what it asks for.
fn key_request(cmd: &KeyCommand) -> (&StoreArgs, &KeyArgs, KeyRequest) {
    match cmd {
        KeyCommand::List(a) => (&a.store, &a.keys, KeyRequest::List { json: a.json }),
        KeyCommand::Add(a) => (
            &a.store,
            &a.keys,
            KeyRequest::Add {
                new_secret: new_secret_source(
                    a.new_key_file.as_deref(),
                    a.new_passphrase_file.as_deref(),
                ),
                label: a.label.clone(),
            },
        ),
        KeyCommand::Remove(a) => (
            &a.store,
            &a.keys,
            KeyRequest::Remove {
                slot: a.slot,
                yes: a.yes,
            },
        ),
        KeyCommand::Passwd(a) => (
            &a.store,
            &a.keys,
            KeyRequest::Passwd {
                new_secret: new_secret_source(None, a.new_passphrase_file.as_deref()),
                slot: a.slot,
                yes: a.yes,
            },
        ),
        KeyCommand::Rotate(a) => (
            &a.store,
            &a.keys,
            KeyRequest::Rotate(Rotation {
                rewrap: a.rewrap,
                resume: a.resume,
                retire: a.retire,
                parallel: a.parallel,
                yes: a.yes,
            }),
        ),
    }
}

fn init_logging(level: LogLevel) {
    let _ = env_logger::Builder::new()
        .filter_level(level.to_filter())
        .format_timestamp(None)
        .try_init();
}
