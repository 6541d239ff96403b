//! `key list|add|remove|passwd|rotate`.
//!
//! Every change is made to the config as read and saved with If-Match on the ETag it was read
//! at: of two key changes racing, the later one fails with "changed by someone else" instead
//! of silently undoing the other. Destructive changes (remove, passwd, retire) ask first.

use std::path::PathBuf;

use serde::Serialize;

use crate::crypto::keys::KeySlot;
use crate::crypto::{Secret, VaultConfig};
use crate::vault::secret::{SecretSource, SecretUse};
use crate::vault::{self, RollbackGuard, StoredConfig};

use super::progress::Progress;
use super::rewrap::{self, RewrapReport};
use super::{Access, OpenedStore, Target, ToolError, ToolResult, Unlocked, confirm, open_target};

/// A `key` subcommand with its arguments resolved.
#[derive(Debug)]
pub enum KeyRequest {
    /// Print JSON instead of text when `json`.
    List {
        json: bool,
    },
    /// Add a slot for `new_secret` (a missing key file is created), labelled `label`.
    Add {
        new_secret: SecretSource,
        label: Option<String>,
    },
    Remove {
        slot: usize,
        yes: bool,
    },
    /// Replace a passphrase slot's passphrase (`slot`, else the one that unlocked).
    Passwd {
        new_secret: SecretSource,
        slot: Option<usize>,
        yes: bool,
    },
    Rotate(Rotation),
}

/// `key rotate`: what to do besides (or instead of) starting a new generation.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub rewrap: bool,
    /// No new generation: finish an interrupted rewrap.
    pub resume: bool,
    pub retire: Option<u32>,
    /// Objects processed at once.
    pub parallel: u16,
    pub yes: bool,
}

pub async fn run(t: &Target, request: &KeyRequest) -> ToolResult<()> {
    match request {
        KeyRequest::List { json } => list(t, *json).await,
        KeyRequest::Add { new_secret, label } => add(t, new_secret, label.as_deref()).await,
        KeyRequest::Remove { slot, yes } => remove(t, *slot, *yes).await,
        KeyRequest::Passwd {
            new_secret,
            slot,
            yes,
        } => passwd(t, new_secret, *slot, *yes).await,
        KeyRequest::Rotate(r) => rotate(t, r).await,
    }
}

#[derive(Serialize)]
struct SlotView {
    index: usize,
    kind: &'static str,
    label: String,
    /// argon2id costs of a passphrase slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    argon2id: Option<[u32; 3]>,
    /// The KMS key of a KMS slot (id, alias or ARN as given when it was added).
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    unlocked_with: bool,
}

#[derive(Serialize)]
struct KeyListView {
    vault_id: String,
    block_size: u32,
    current_generation: u32,
    generations: Vec<u32>,
    slots: Vec<SlotView>,
}

fn list_view(config: &VaultConfig, opened_by: Option<usize>) -> KeyListView {
    KeyListView {
        vault_id: hex::encode(config.vault_id()),
        block_size: config.block_size(),
        current_generation: config.current_generation(),
        generations: config.generations(),
        slots: config
            .slots()
            .iter()
            .enumerate()
            .map(|(index, slot)| SlotView {
                index,
                kind: slot.kind(),
                label: slot.label().to_owned(),
                argon2id: match slot {
                    KeySlot::Passphrase {
                        m_cost_kib,
                        t_cost,
                        p_cost,
                        ..
                    } => Some([*m_cost_kib, *t_cost, *p_cost]),
                    KeySlot::KeyFile { .. } | KeySlot::Kms { .. } => None,
                },
                kms_key_id: slot.kms_key_id().map(str::to_owned),
                unlocked_with: opened_by == Some(index),
            })
            .collect(),
    }
}

/// `key list` as text.
fn list_text(view: &KeyListView) -> String {
    let mut out = format!(
        "vault {}, block size {} bytes\nkey generations (new uploads use the current one):\n",
        view.vault_id, view.block_size
    );
    for g in &view.generations {
        let mark = if *g == view.current_generation {
            "  (current)"
        } else {
            ""
        };
        out.push_str(&format!("  {g}{mark}\n"));
    }
    out.push_str("key slots (each opens the vault on its own):\n");
    for s in &view.slots {
        let costs = s
            .argon2id
            .map(|[m, t, p]| format!("  argon2id m={m} KiB t={t} p={p}"))
            .or_else(|| s.kms_key_id.as_ref().map(|k| format!("  KMS key {k}")))
            .unwrap_or_default();
        let mark = if s.unlocked_with {
            "  <- unlocked with this"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {}  {:<10}  {:?}{costs}{mark}\n",
            s.index, s.kind, s.label
        ));
    }
    out
}

async fn list(t: &Target, json: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let u = super::unlock(&opened, t).await?;
    let opened_by = u.stored.config.slot_index_for(&u.secret)?;
    let view = list_view(&u.stored.config, opened_by);
    if json {
        let json = serde_json::to_string_pretty(&view)
            .map_err(|e| ToolError::Problems(format!("cannot encode JSON: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", list_text(&view));
    }
    Ok(())
}

/// Save `config` over the version `stored` was read at, and remember its counter.
async fn save(
    opened: &OpenedStore,
    stored: &StoredConfig,
    config: &VaultConfig,
    guard: &RollbackGuard,
) -> ToolResult<String> {
    vault::save_config(&*opened.store, &opened.prefix, config, &stored.etag, guard)
        .await
        .map_err(|e| ToolError::Vault(e.with_location(&opened.url)))
}

async fn add(t: &Target, new: &SecretSource, label: Option<&str>) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let Unlocked { stored, keys, .. } = super::unlock(&opened, t).await?;
    let created: Option<PathBuf> = new.key_file_to_create();
    let result = async {
        let new_secret = load_new(new, &opened.url)?;
        if let Secret::Kms(kms) = &new_secret {
            // Compared by key id: asking KMS to open the existing slots would cost calls.
            let same = stored.config.slots().iter().position(|s| {
                s.kms_key_id().is_some() && s.kms_key_id() == kms.new_key_id.as_deref()
            });
            if let Some(i) = same {
                return Err(ToolError::Refused(format!(
                    "KMS key slot {i} already uses that KMS key; nothing was changed"
                )));
            }
        } else if let Some(i) = stored.config.slot_index_for(&new_secret)? {
            return Err(ToolError::Refused(format!(
                "that {} already opens key slot {i}; nothing was changed",
                secret_kind(&new_secret)
            )));
        }
        let mut config = stored.config.clone();
        let label = label.unwrap_or("added");
        let index = config.add_slot(&keys, &new_secret, label)?;
        save(&opened, &stored, &config, &t.rollback_guard()).await?;
        Ok((index, secret_kind(&new_secret), label.to_owned()))
    }
    .await;
    match result {
        Ok((index, kind, label)) => {
            if let Some(path) = &created {
                println!(
                    "created key file {} (mode 0600): keep it safe, it opens the vault",
                    path.display()
                );
            }
            println!("added key slot {index} ({kind}, label {label:?})");
            Ok(())
        }
        Err(e) => {
            if let Some(path) = &created {
                // It was never added: leaving it would suggest it opens the vault.
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// The new secret of `key add` / `key passwd` (a missing key file is created; a prompted
/// passphrase is asked twice).
fn load_new(new: &SecretSource, url: &str) -> ToolResult<Secret> {
    Ok(new.load(SecretUse::CreateVault, &format!("{url} (new)"))?)
}

fn secret_kind(secret: &Secret) -> &'static str {
    secret.kind()
}

fn describe_slot(config: &VaultConfig, index: usize) -> ToolResult<String> {
    let slot = config.slots().get(index).ok_or_else(|| {
        ToolError::Usage(format!(
            "no key slot {index}: the vault has slots 0..={} (see `s3cryptfs key list`)",
            config.slots().len().saturating_sub(1)
        ))
    })?;
    Ok(format!(
        "key slot {index} ({}, label {:?})",
        slot.kind(),
        slot.label()
    ))
}

async fn remove(t: &Target, slot: usize, yes: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let Unlocked {
        stored,
        keys,
        secret,
    } = super::unlock(&opened, t).await?;
    let what = describe_slot(&stored.config, slot)?;
    if stored.config.slots().len() == 1 {
        return Err(ToolError::Refused(format!(
            "refusing to remove {what}: it is the only key slot, and nothing could open the \
             vault without it"
        )));
    }
    let own = stored.config.slot_index_for(&secret)? == Some(slot);
    let warning = if own {
        " It is the slot you unlocked with: your key file, passphrase or KMS key will stop \
         working."
    } else {
        ""
    };
    confirm(
        &format!(
            "Remove {what}? Its key file, passphrase or KMS key will no longer open the \
             vault.{warning}"
        ),
        yes,
    )?;
    let mut config = stored.config.clone();
    config.remove_slot(&keys, slot)?;
    save(&opened, &stored, &config, &t.rollback_guard()).await?;
    println!("removed {what}; slot numbers above it moved down by one");
    Ok(())
}

async fn passwd(t: &Target, new: &SecretSource, slot: Option<usize>, yes: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let Unlocked {
        stored,
        keys,
        secret,
    } = super::unlock(&opened, t).await?;
    let index = match slot {
        Some(i) => i,
        None => match (&secret, stored.config.slot_index_for(&secret)?) {
            (Secret::Passphrase(_), Some(i)) => i,
            _ => {
                return Err(ToolError::Usage(
                    "unlocked with a key file: say which passphrase slot to change with --slot N \
                     (see `s3cryptfs key list`)"
                        .into(),
                ));
            }
        },
    };
    let what = describe_slot(&stored.config, index)?;
    match stored.config.slots().get(index) {
        Some(KeySlot::KeyFile { .. }) => {
            return Err(ToolError::Usage(format!(
                "{what} is a key-file slot; to replace a key file, `key add --new-key-file` and \
                 then `key remove` the old slot"
            )));
        }
        Some(KeySlot::Kms { .. }) => {
            return Err(ToolError::Usage(format!(
                "{what} is a KMS slot; to move to another KMS key, `key add --new-kms-key-id` \
                 and then `key remove` the old slot"
            )));
        }
        _ => {}
    }
    let new_secret = load_new(new, &opened.url)?;
    if !matches!(new_secret, Secret::Passphrase(_)) {
        return Err(ToolError::Usage("key passwd sets a passphrase".into()));
    }
    confirm(
        &format!(
            "Change the passphrase of {what}? The old passphrase will stop opening the vault."
        ),
        yes,
    )?;
    let mut config = stored.config.clone();
    config.replace_slot_secret(&keys, index, &new_secret)?;
    save(&opened, &stored, &config, &t.rollback_guard()).await?;
    println!("changed the passphrase of {what}");
    Ok(())
}

fn print_rewrap_report(report: &RewrapReport) {
    println!(
        "rewrap to generation {}: {} objects examined, {} rewrapped, {} already current",
        report.generation, report.examined, report.rewrapped, report.already_current
    );
    for (title, list) in [
        ("skipped (changed during the rewrap)", &report.changed),
        ("failed", &report.failed),
    ] {
        if !list.is_empty() {
            println!("{title}: {}", list.len());
            for issue in list {
                println!("  {}: {}", issue.key, issue.reason);
            }
        }
    }
}

async fn rotate(t: &Target, args: &Rotation) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let Unlocked {
        stored,
        mut keys,
        secret,
    } = super::unlock(&opened, t).await?;
    let parallel = usize::from(args.parallel);
    if let Some(n) = args.retire {
        if !stored.config.generations().contains(&n) {
            return Err(ToolError::Usage(format!(
                "the vault has no key generation {n} (it has {:?})",
                stored.config.generations()
            )));
        }
        if n == stored.config.current_generation() {
            return Err(ToolError::Usage(format!(
                "generation {n} is the current one; `key rotate` to a new generation first"
            )));
        }
    }
    if !args.resume && args.retire.is_none() {
        let mut config = stored.config.clone();
        let generation = config.add_generation(&mut keys)?;
        save(&opened, &stored, &config, &t.rollback_guard()).await?;
        println!(
            "key generation {generation} is now current: new uploads use it (mounts running now \
             keep the generation they started with until remounted); older objects stay readable"
        );
    }
    let mut rewrap_incomplete = None;
    if args.rewrap {
        let progress = Progress::on_stderr("rewrap");
        let report =
            rewrap::rewrap_objects(&opened.store, &opened.prefix, &keys, parallel, &progress).await;
        progress.finish();
        let report = report?;
        print_rewrap_report(&report);
        if !report.is_complete() {
            rewrap_incomplete = Some(format!(
                "the rewrap is incomplete ({} changed, {} failed); run `s3cryptfs key rotate \
                 --rewrap --resume {}` to finish it",
                report.changed.len(),
                report.failed.len(),
                opened.url
            ));
        }
    }
    if let Some(n) = args.retire {
        if let Some(msg) = rewrap_incomplete {
            return Err(ToolError::Problems(format!(
                "{msg}; generation {n} was not retired"
            )));
        }
        let guard = t.rollback_guard();
        retire(&opened, &keys, &secret, &guard, n, parallel, args.yes).await?;
    }
    match rewrap_incomplete {
        Some(msg) => Err(ToolError::Problems(msg)),
        None => Ok(()),
    }
}

async fn retire(
    opened: &OpenedStore,
    keys: &crate::crypto::VaultKeys,
    secret: &Secret,
    guard: &RollbackGuard,
    generation: u32,
    parallel: usize,
    yes: bool,
) -> ToolResult<()> {
    let progress = Progress::on_stderr("retire check");
    let check = rewrap::check_retire(
        &opened.store,
        &opened.prefix,
        keys,
        generation,
        parallel,
        &progress,
    )
    .await;
    progress.finish();
    let check = check?;
    for issue in &check.unreadable {
        eprintln!("warning: {}: {}", issue.key, issue.reason);
    }
    if !check.blockers.is_empty() {
        for issue in check.blockers.iter().take(20) {
            println!("  {}: {}", issue.key, issue.reason);
        }
        if check.blockers.len() > 20 {
            println!("  ... and {} more", check.blockers.len() - 20);
        }
        return Err(ToolError::Refused(format!(
            "refusing to retire key generation {generation}: {} of {} objects still need it; \
             run `s3cryptfs key rotate --rewrap --resume {}` first",
            check.blockers.len(),
            check.examined,
            opened.url
        )));
    }
    confirm(
        &format!(
            "Retire key generation {generation}? No object needs it now ({} checked). Mounts \
             started before the last rotation may still write under it: remount them first. \
             Plain copies made before the rewrap (without metadata) will need an old config \
             backup to be read.",
            check.examined
        ),
        yes,
    )?;
    // Re-read the config: the check may have taken long, and If-Match on a fresh read keeps
    // the window for a concurrent change small.
    let stored = vault::load_config(&*opened.store, &opened.prefix)
        .await
        .map_err(|e| e.with_location(&opened.url))?;
    let mut fresh = vault::unlock_config(&stored, &opened.prefix, secret, guard)
        .map_err(|e| e.with_location(&opened.url))?;
    let mut config = stored.config.clone();
    config.remove_generation(&mut fresh, generation)?;
    save(opened, &stored, &config, guard).await?;
    println!(
        "retired key generation {generation} ({} objects checked); the vault config no longer \
         holds its key",
        check.examined
    );
    Ok(())
}
