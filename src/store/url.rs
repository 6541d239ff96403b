//! Store URLs: `file:///absolute/path`, `mem://name` and `s3://bucket/prefix`.
//!
//! File paths are taken literally (no percent-decoding), so what a user types is the path used.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::StoreError;

const ACCEPTED: &str = "file:///absolute/path, mem://name or s3://bucket/prefix";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `file:///path`: a DirStore rooted at path.
    File { path: PathBuf },
    /// `mem://name`: a process-local MemoryStore.
    Memory { name: String },
    /// `s3://bucket/prefix`: an S3 bucket; `prefix` is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let invalid = |reason: &str| {
            StoreError::InvalidArgument(format!(
                "invalid store URL {url:?}: {reason}; expected {ACCEPTED}"
            ))
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.starts_with('/') {
                return Err(invalid(&format!("a bare path; did you mean file://{url}?")));
            }
            return Err(invalid("no scheme"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if rest.starts_with('/') {
                    Ok(StoreUrl::File {
                        path: PathBuf::from(rest),
                    })
                } else if rest.is_empty() {
                    Err(invalid("no path"))
                } else {
                    Err(invalid(&format!(
                        "file:// needs an absolute path (three slashes): did you mean file:///{rest} \
                         or file://$PWD/{rest}?"
                    )))
                }
            }
            "mem" => {
                if rest.contains('/') {
                    return Err(invalid("a mem:// name may not contain '/'"));
                }
                let name = if rest.is_empty() { "default" } else { rest };
                Ok(StoreUrl::Memory { name: name.into() })
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("no bucket name"));
                }
                if let Some(c) = bucket
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                {
                    return Err(invalid(&format!("bucket name has the character {c:?}")));
                }
                let prefix = prefix.trim_start_matches('/');
                let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                    prefix.to_owned()
                } else {
                    format!("{prefix}/")
                };
                Ok(StoreUrl::S3 {
                    bucket: bucket.into(),
                    prefix,
                })
            }
            _ => Err(invalid(&format!("unknown scheme {scheme:?}"))),
        }
    }
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUrl::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::File { path } => write!(f, "file://{}", path.display()),
            StoreUrl::Memory { name } => write!(f, "mem://{name}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> StoreUrl {
        StoreUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn error(url: &str) -> String {
        match StoreUrl::parse(url) {
            Ok(parsed) => panic!("{url} parsed as {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            parse("file:///var/lib/vault"),
            StoreUrl::File {
                path: "/var/lib/vault".into()
            }
        );
        assert_eq!(
            parse("FILE:///a b/c"),
            StoreUrl::File {
                path: "/a b/c".into()
            }
        );
        let e = error("file://relative/dir");
        assert!(e.contains("file:///relative/dir"), "{e}");
        assert!(e.contains("absolute"), "{e}");
        assert!(error("file://").contains("no path"));
    }

    #[test]
    fn mem_urls() {
        assert_eq!(parse("mem://x"), StoreUrl::Memory { name: "x".into() });
        assert_eq!(
            parse("mem://"),
            StoreUrl::Memory {
                name: "default".into()
            }
        );
        assert!(error("mem://a/b").contains("'/'"));
    }

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse("s3://bucket"),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("s3://bucket/a/b"),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/b/".into()
            }
        );
        assert_eq!(
            parse("s3://bucket/a/"),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/".into()
            }
        );
        assert!(error("s3:///x").contains("no bucket"));
        assert!(error("s3://bu cket/x").contains("character"));
    }

    #[test]
    fn malformed_urls_name_the_url_and_the_accepted_forms() {
        for url in ["", "vault", "http://x", "/abs/path"] {
            let e = error(url);
            assert!(e.contains(&format!("{url:?}")), "{e}");
            assert!(e.contains("mem://name"), "{e}");
        }
        assert!(error("/abs/path").contains("did you mean file:///abs/path"));
    }

    #[test]
    fn display_round_trips() {
        for url in ["file:///a/b", "mem://x", "s3://b/p/", "s3://b/"] {
            assert_eq!(parse(url).to_string(), url);
            assert_eq!(url.parse::<StoreUrl>().ok(), Some(parse(url)));
        }
    }
}
