//! The tools' operands and command-line values: clap fills positionals from the left, so with
//! `--config` (which may set `[store] url`) a first operand without `://` is not the store
//! URL but the command's first operand, and the others move one place right. Without a
//! config file the store URL is always the first operand, as clap parsed it.

use std::path::PathBuf;

use super::args::{BucketArgs, GlobalArgs, KeyArgs};
use super::tools::{CatArgs, DoctorArgs, GetArgs, LsArgs, PutArgs, StoreArgs, VerifyArgs};
use crate::config::Overrides;

impl DoctorArgs {
    pub fn overrides(&self, global: &GlobalArgs) -> Overrides {
        overrides(
            self.store_url.clone(),
            Some(&self.keys),
            &self.bucket,
            global,
        )
    }
}

impl StoreArgs {
    /// Whether the STORE_URL slot holds the command's first operand instead (see the module
    /// docs).
    pub fn url_is_operand(&self) -> bool {
        url_is_operand(self.config.is_some(), self.store_url.as_deref())
    }

    /// The command-line values, `url` being the store URL after [`StoreArgs::url_is_operand`].
    pub fn overrides(
        &self,
        url: Option<String>,
        keys: Option<&KeyArgs>,
        global: &GlobalArgs,
    ) -> Overrides {
        overrides(url, keys, &self.bucket, global)
    }
}

fn url_is_operand(config: bool, url: Option<&str>) -> bool {
    config && url.is_some_and(|u| !u.contains("://"))
}

fn overrides(
    store_url: Option<String>,
    keys: Option<&KeyArgs>,
    bucket: &BucketArgs,
    global: &GlobalArgs,
) -> Overrides {
    let mut o = Overrides {
        store_url,
        key_file: keys.and_then(|k| k.key_file.clone()),
        passphrase_file: keys.and_then(|k| k.passphrase_file.clone()),
        accept_config_rollback: keys.is_some_and(|k| k.accept_config_rollback),
        log_level: global.log_level,
        allow_core_dumps: global.allow_core_dumps,
        ..Overrides::default()
    };
    bucket.apply(&mut o);
    if let Some(k) = keys {
        k.apply_kms(&mut o);
    }
    o
}

impl VerifyArgs {
    /// The store URL and the PATH operand.
    pub fn operands(&self) -> (Option<String>, Option<String>) {
        url_and_path(&self.store, &self.path)
    }
}

impl LsArgs {
    /// The store URL and the PATH operand.
    pub fn operands(&self) -> (Option<String>, Option<String>) {
        url_and_path(&self.store, &self.path)
    }
}

fn url_and_path(store: &StoreArgs, path: &Option<String>) -> (Option<String>, Option<String>) {
    if store.url_is_operand() && path.is_none() {
        (None, store.store_url.clone())
    } else {
        (store.store_url.clone(), path.clone())
    }
}

impl CatArgs {
    /// The store URL and the PATH operands.
    pub fn operands(&self) -> (Option<String>, Vec<String>) {
        if self.store.url_is_operand() {
            let mut paths = vec![self.store.store_url.clone().unwrap_or_default()];
            paths.extend(self.paths.iter().cloned());
            (None, paths)
        } else {
            (self.store.store_url.clone(), self.paths.clone())
        }
    }
}

impl GetArgs {
    /// The store URL, SRC_PATH and DEST; an error names a missing operand.
    pub fn operands(&self) -> Result<(Option<String>, String, PathBuf), String> {
        let (url, src, dest) = if self.store.url_is_operand() && self.dest.is_none() {
            let dest = self.src.clone().map(PathBuf::from);
            (None, self.store.store_url.clone(), dest)
        } else {
            (
                self.store.store_url.clone(),
                self.src.clone(),
                self.dest.clone(),
            )
        };
        match (src, dest) {
            (Some(src), Some(dest)) => Ok((url, src, dest)),
            _ => Err("get needs SRC_PATH and DEST; see `s3cryptfs get --help`".to_owned()),
        }
    }
}

impl PutArgs {
    /// The store URL, LOCAL_SRC and DEST_PATH; an error names a missing operand.
    pub fn operands(&self) -> Result<(Option<String>, PathBuf, String), String> {
        let shifted =
            url_is_operand(self.config.is_some(), self.store_url.as_deref()) && self.dest.is_none();
        let (url, src, dest) = if shifted {
            let dest = match &self.src {
                Some(p) => Some(
                    p.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("DEST_PATH {} is not valid UTF-8", p.display()))?,
                ),
                None => None,
            };
            (None, self.store_url.clone().map(PathBuf::from), dest)
        } else {
            (self.store_url.clone(), self.src.clone(), self.dest.clone())
        };
        match (src, dest) {
            (Some(src), Some(dest)) => Ok((url, src, dest)),
            _ => Err("put needs LOCAL_SRC and DEST_PATH; see `s3cryptfs put --help`".to_owned()),
        }
    }

    /// The command-line values, `url` being the store URL from [`PutArgs::operands`].
    pub fn overrides(&self, url: Option<String>, global: &GlobalArgs) -> Overrides {
        overrides(url, Some(&self.keys), &self.bucket, global)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tools::ToolCommand;
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ToolCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("s3cryptfs").chain(args.iter().copied()))?;
        match cli.command {
            Command::Tools(t) => Ok(t),
            other => panic!("not a tool command: {other:?}"),
        }
    }

    #[test]
    fn with_a_config_the_store_url_may_be_left_out() {
        let ToolCommand::Ls(a) = parse(&["ls", "--config", "/c.toml"]).expect("ls") else {
            panic!("not ls");
        };
        assert_eq!(a.operands(), (None, None));
        let ToolCommand::Ls(a) = parse(&["ls", "-c", "/c.toml", "docs"]).expect("ls") else {
            panic!("not ls");
        };
        assert_eq!(a.operands(), (None, Some("docs".to_owned())));
        let ToolCommand::Ls(a) = parse(&["ls", "-c", "/c", "file:///v", "docs"]).expect("ls")
        else {
            panic!("not ls");
        };
        assert_eq!(
            a.operands(),
            (Some("file:///v".into()), Some("docs".into()))
        );
        let ToolCommand::Cat(a) = parse(&["cat", "-c", "/c", "a", "b"]).expect("cat") else {
            panic!("not cat");
        };
        assert_eq!(a.operands(), (None, vec!["a".to_owned(), "b".to_owned()]));
        let ToolCommand::Get(a) = parse(&["get", "-c", "/c", "/", "/tmp/out"]).expect("get") else {
            panic!("not get");
        };
        assert_eq!(
            a.operands(),
            Ok((None, "/".to_owned(), PathBuf::from("/tmp/out")))
        );
        let ToolCommand::Get(a) = parse(&["get", "-c", "/c", "/"]).expect("get") else {
            panic!("not get");
        };
        assert!(a.operands().is_err());
        let ToolCommand::Put(a) = parse(&["put", "-c", "/c", "/tmp/in", "d"]).expect("put") else {
            panic!("not put");
        };
        assert_eq!(
            a.operands(),
            Ok((None, PathBuf::from("/tmp/in"), "d".to_owned()))
        );
        for args in [
            &["key", "list", "-c", "/c"][..],
            &["verify", "-c", "/c"],
            &["cleanup", "-c", "/c", "--dry-run"],
            &["doctor", "-c", "/c"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(parse(&["ls"]).is_err(), "no URL and no config");
    }
}
