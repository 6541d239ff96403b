//! The secret that unlocks a vault, and the key files and passphrase files it comes from.
//!
//! Both kinds of file must be private to their owner: a file with any group or other permission bit is
//! refused with the path, the mode and the fix. The file is opened first and its permissions
//! read from the open handle, so what is checked is what is read. It is opened with
//! `O_NOFOLLOW`, so a symbolic link is refused rather than followed (a link planted where the
//! key is expected cannot make the daemon read, or report on, another file), and it must belong
//! to the user running s3cryptfs or to root: a file another user owns could be rewritten by
//! them whatever its mode.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::error::{CryptoError, CryptoResult};
use super::kdf;
use super::kms::KmsWrap;

/// What unlocks a vault: the bytes of a key file, a passphrase, or a KMS client.
pub enum Secret {
    KeyFile(Zeroizing<[u8; 32]>),
    /// Used as its raw UTF-8 bytes (no Unicode normalization).
    Passphrase(Zeroizing<String>),
    /// Opens the vault's KMS slots; seals a new one under `new_key_id`.
    Kms(KmsSecret),
}

/// A KMS client, and the key a new KMS slot is encrypted under (`init --kms-key-id`,
/// `key add --new-kms-key-id`).
#[derive(Clone)]
pub struct KmsSecret {
    pub client: Arc<dyn KmsWrap>,
    pub new_key_id: Option<String>,
}

impl Secret {
    pub fn kind(&self) -> &'static str {
        match self {
            Secret::KeyFile(_) => "key file",
            Secret::Passphrase(_) => "passphrase",
            Secret::Kms(_) => "KMS",
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::KeyFile(_) => f.write_str("Secret::KeyFile(<redacted>)"),
            Secret::Passphrase(_) => f.write_str("Secret::Passphrase(<redacted>)"),
            Secret::Kms(k) => write!(f, "Secret::Kms({:?})", k.new_key_id),
        }
    }
}

/// Longest file either reader accepts; anything longer is certainly not a key or passphrase.
const MAX_SECRET_FILE_LEN: u64 = 4096;

fn io_err(path: &Path, source: std::io::Error) -> CryptoError {
    CryptoError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Opens `path` without following a symbolic link (`O_NOFOLLOW`); a link is refused with a
/// message that says so.
fn open_no_follow(path: &Path, what: &str) -> CryptoResult<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                CryptoError::InvalidKeyMaterial(format!(
                    "{what} {} is a symbolic link, which is refused: give the path of the file \
                     itself",
                    path.display()
                ))
            } else {
                io_err(path, e)
            }
        })
}

/// Refuses a file owned by anyone but the running user (effective uid) or root.
fn check_owner(path: &Path, what: &str, owner: u32) -> CryptoResult<()> {
    let me = nix::unistd::geteuid().as_raw();
    if owner == me || owner == 0 {
        return Ok(());
    }
    Err(CryptoError::InvalidKeyMaterial(format!(
        "{what} {} is owned by uid {owner}, not by the user running s3cryptfs (uid {me}) or \
         root: another user could change it; chown it",
        path.display()
    )))
}

/// Opens `path`, refuses it unless it is a regular file (not a symbolic link) owned by the
/// running user or root with no group/other permission bits, and reads it (at most
/// [`MAX_SECRET_FILE_LEN`] bytes) into zeroizing memory.
fn read_private_file(path: &Path, what: &str) -> CryptoResult<Zeroizing<Vec<u8>>> {
    let mut file = open_no_follow(path, what)?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "{what} {} is not a regular file",
            path.display()
        )));
    }
    check_owner(path, what, meta.uid())?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        let how = if mode & 0o044 != 0 {
            "readable"
        } else {
            "accessible"
        };
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "{what} {} is {how} by group/others (mode {mode:04o}); chmod 600 it",
            path.display()
        )));
    }
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "{what} {} is {} bytes, too long for a {what}",
            path.display(),
            meta.len()
        )));
    }
    // Capacity reserved up front so the buffer never reallocates (which would leave an
    // unzeroized copy behind).
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_LEN as usize + 1));
    (&mut file)
        .take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    if buf.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "{what} {} grew past {MAX_SECRET_FILE_LEN} bytes while being read",
            path.display()
        )));
    }
    Ok(buf)
}

/// Parses key file contents: exactly 32 raw bytes, or 64 hex digits with an optional
/// trailing newline.
fn parse_key(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() == 32 {
        key.copy_from_slice(bytes);
        return Some(key);
    }
    let hex_digits = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if hex_digits.len() != 64 {
        return None;
    }
    hex::decode_to_slice(hex_digits, &mut key[..]).ok()?;
    Some(key)
}

/// Read a key file: refuses group/world-readable files (naming the path and mode) and files that
/// are not 32 raw bytes or 64 hex digits.
pub fn read_key_file(path: &Path) -> CryptoResult<Secret> {
    let bytes = read_private_file(path, "key file")?;
    let key = parse_key(&bytes).ok_or_else(|| {
        CryptoError::InvalidKeyMaterial(format!(
            "key file {} must hold exactly 32 raw bytes or 64 hex digits (optionally followed \
             by a newline); it holds {} bytes",
            path.display(),
            bytes.len()
        ))
    })?;
    Ok(Secret::KeyFile(key))
}

/// Create a new random key file with mode 0600 (fails if it exists).
///
/// Writes 64 lowercase hex digits and a newline, then fsyncs the file and (best effort) its
/// directory.
pub fn generate_key_file(path: &Path) -> CryptoResult<Secret> {
    let key = kdf::random_key()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    let mut text = Zeroizing::new([0u8; 65]);
    hex::encode_to_slice(&key[..], &mut text[..64])
        // 32 bytes always encode to exactly 64 hex digits.
        .expect("64-byte buffer holds the hex of 32 bytes");
    text[64] = b'\n';
    file.write_all(&text[..]).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(Secret::KeyFile(key))
}

/// Read a passphrase file (trailing newline stripped; refuses group/world-readable files).
pub fn read_passphrase_file(path: &Path) -> CryptoResult<Secret> {
    let bytes = read_private_file(path, "passphrase file")?;
    let text = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(&bytes);
    if text.is_empty() {
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "passphrase file {} is empty",
            path.display()
        )));
    }
    let text = std::str::from_utf8(text).map_err(|_| {
        CryptoError::InvalidKeyMaterial(format!(
            "passphrase file {} is not valid UTF-8",
            path.display()
        ))
    })?;
    Ok(Secret::Passphrase(Zeroizing::new(text.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_mode(path: &Path, contents: &[u8], mode: u32) {
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn key_of(s: Secret) -> [u8; 32] {
        match s {
            Secret::KeyFile(k) => *k,
            _ => panic!("expected a key file secret"),
        }
    }

    #[test]
    fn generate_then_read_roundtrips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        let generated = key_of(generate_key_file(&path).unwrap());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert_eq!(key_of(read_key_file(&path).unwrap()), generated);

        // O_EXCL: never overwrite an existing key.
        let again = generate_key_file(&path).unwrap_err();
        assert!(matches!(again, CryptoError::Io { .. }), "{again}");
        assert_eq!(key_of(read_key_file(&path).unwrap()), generated);
    }

    #[test]
    fn accepts_raw_and_hex_forms() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        write_mode(&raw, &[0xabu8; 32], 0o600);
        assert_eq!(key_of(read_key_file(&raw).unwrap()), [0xab; 32]);

        let hex_path = dir.path().join("hex");
        write_mode(&hex_path, "0f".repeat(32).as_bytes(), 0o400);
        assert_eq!(key_of(read_key_file(&hex_path).unwrap()), [0x0f; 32]);

        let upper = dir.path().join("upper");
        write_mode(&upper, format!("{}\n", "AB".repeat(32)).as_bytes(), 0o600);
        assert_eq!(key_of(read_key_file(&upper).unwrap()), [0xab; 32]);
    }

    #[test]
    fn refuses_group_or_world_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_mode(&path, &[1u8; 32], 0o644);
        let msg = read_key_file(&path).unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("mode 0644"), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(msg.contains("readable by group/others"), "{msg}");

        write_mode(&path, &[1u8; 32], 0o620);
        let msg = read_key_file(&path).unwrap_err().to_string();
        assert!(msg.contains("mode 0620"), "{msg}");

        write_mode(&path, b"secret\n", 0o640);
        let msg = read_passphrase_file(&path).unwrap_err().to_string();
        assert!(msg.contains("passphrase file"), "{msg}");
        assert!(msg.contains("mode 0640"), "{msg}");
    }

    #[test]
    fn refuses_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.key");
        write_mode(&target, &[1u8; 32], 0o600);
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for read in [read_key_file, read_passphrase_file] {
            let err = read(&link).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, CryptoError::InvalidKeyMaterial(_)), "{msg}");
            assert!(msg.contains(&link.display().to_string()), "{msg}");
            assert!(msg.contains("symbolic link"), "{msg}");
        }
        // The file itself is fine.
        assert_eq!(key_of(read_key_file(&target).unwrap()), [1u8; 32]);
    }

    #[test]
    fn refuses_files_owned_by_another_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("theirs.key");
        write_mode(&path, &[1u8; 32], 0o600);
        // The tests run as root, who can give the file to nobody (65534).
        std::os::unix::fs::chown(&path, Some(65534), None).expect("chown (run as root)");
        for read in [read_key_file, read_passphrase_file] {
            let err = read(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, CryptoError::InvalidKeyMaterial(_)), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("owned by uid 65534"), "{msg}");
        }
        // Root's files are the running user's here, and accepted.
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        assert_eq!(key_of(read_key_file(&path).unwrap()), [1u8; 32]);
    }

    #[test]
    fn refuses_malformed_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        for bad in [
            &b""[..],
            &[1u8; 31][..],
            &[1u8; 33][..],
            "zz".repeat(32).as_bytes(),
            format!("{}\n\n", "00".repeat(32)).as_bytes(),
            "00".repeat(31).as_bytes(),
        ] {
            write_mode(&path, bad, 0o600);
            let err = read_key_file(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, CryptoError::InvalidKeyMaterial(_)), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_key_file(&missing),
            Err(CryptoError::Io { .. })
        ));
        assert!(matches!(
            read_key_file(dir.path()),
            Err(CryptoError::InvalidKeyMaterial(_))
        ));
    }

    #[test]
    fn passphrase_file_strips_one_newline_and_refuses_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        write_mode(&path, b"correct horse\n", 0o600);
        match read_passphrase_file(&path).unwrap() {
            Secret::Passphrase(p) => assert_eq!(p.as_str(), "correct horse"),
            _ => panic!("expected a passphrase"),
        }
        write_mode(&path, b"two\n\n", 0o600);
        match read_passphrase_file(&path).unwrap() {
            Secret::Passphrase(p) => assert_eq!(p.as_str(), "two\n"),
            _ => panic!("expected a passphrase"),
        }
        for empty in [&b""[..], b"\n"] {
            write_mode(&path, empty, 0o600);
            let msg = read_passphrase_file(&path).unwrap_err().to_string();
            assert!(msg.contains("is empty"), "{msg}");
        }
    }
}
