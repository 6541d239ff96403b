//! Plaintext markers that must never reach the store or staging, and tampered objects.

use super::*;

/// Writes the plaintext marker, repeated, through the mount: small, one block, several
/// blocks, in a symlink target. Returns the paths written.
pub fn write_marker_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("secret stuff");
    fs::create_dir_all(&dir).expect("mkdir");
    let mut out = Vec::new();
    for (name, len) in [
        ("small.txt", 300usize),
        ("one-block.txt", (64 * KIB) as usize),
        ("several-blocks.txt", (3 * MIB + 123) as usize),
    ] {
        let p = dir.join(name);
        fs::write(&p, data::marker_bytes(len)).expect("write marker file");
        out.push(p);
    }
    // Rewritten in the middle through an open file, then renamed: every path a byte takes.
    let p = dir.join("rewritten.txt");
    {
        let f = open_rw(&p);
        f.write_all_at(&data::marker_bytes(200 * KIB as usize), 0)
            .expect("write");
        f.write_all_at(&data::marker_bytes(1000), 100_000)
            .expect("overwrite");
        f.sync_all().expect("fsync");
        f.write_all_at(&data::marker_bytes(500), 150_000)
            .expect("write after fsync");
    }
    let q = dir.join("renamed.txt");
    fs::rename(&p, &q).expect("rename");
    out.push(q);
    let target = String::from_utf8(data::marker_bytes(3 * data::PLAINTEXT_MARKER.len()))
        .expect("marker is ASCII");
    std::os::unix::fs::symlink(&target, dir.join("marker-link")).expect("symlink");
    for p in &out {
        assert!(
            super::super::contains_bytes(&fs::read(p).expect("read back"), data::PLAINTEXT_MARKER),
            "{} reads back with the marker",
            p.display()
        );
    }
    out
}

/// Reads `path` whole; panics unless that fails with EIO (at open or at read).
#[track_caller]
pub fn assert_read_is_eio(path: &Path) {
    let r = File::open(path).and_then(|mut f| {
        let mut v = Vec::new();
        f.read_to_end(&mut v).map(|_| v)
    });
    match r {
        Ok(v) => panic!(
            "reading tampered {} returned {} bytes instead of EIO",
            path.display(),
            v.len()
        ),
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EIO),
            "reading tampered {}: expected EIO, got {e}",
            path.display()
        ),
    }
}

/// A pread of `len` bytes at `offset`; panics unless it fails with EIO.
#[track_caller]
pub fn assert_pread_is_eio(path: &Path, offset: u64, len: usize) {
    let r = File::open(path).and_then(|f| pread_full(&f, offset, len));
    match r {
        Ok(v) => panic!(
            "pread of tampered {} at {offset} returned {} bytes instead of EIO",
            path.display(),
            v.len()
        ),
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EIO),
            "pread of tampered {} at {offset}: expected EIO, got {e}",
            path.display()
        ),
    }
}

/// Names and sizes of the files the tamper tests damage (each more than three blocks).
pub const TAMPER_VICTIMS: [&str; 6] = [
    "flip-body.bin",
    "flip-header.bin",
    "flip-last-tag.bin",
    "truncated-block.bin",
    "truncated-odd.bin",
    "swapped.bin",
];
pub const TAMPER_SIZE: u64 = 3 * 64 * KIB + 1000;
pub const TAMPER_INTACT: &str = "intact.bin";

/// Writes the victims and one intact file (seeds 100 + index).
pub fn write_tamper_files(root: &Path) {
    for (i, name) in TAMPER_VICTIMS.iter().enumerate() {
        write_stream_file(&root.join(name), 100 + i as u64, TAMPER_SIZE);
    }
    write_stream_file(&root.join(TAMPER_INTACT), 99, TAMPER_SIZE);
}

/// The damaged files give EIO, twice over (no garbage cached); the intact one reads fine.
pub fn check_tamper_files(root: &Path) {
    for name in TAMPER_VICTIMS {
        let p = root.join(name);
        assert_read_is_eio(&p);
        assert_read_is_eio(&p);
    }
    // Swapped blocks 0 and 1: a read of block 0 alone must already fail.
    assert_pread_is_eio(&root.join("swapped.bin"), 0, 4096);
    assert_stream_file(&root.join(TAMPER_INTACT), 99, TAMPER_SIZE);
}

/// Applies the damage named by `name` to an object's stored bytes. Returns the new bytes.
pub fn tamper(name: &str, mut obj: Vec<u8>) -> Vec<u8> {
    use s3cryptfs::crypto::format::{BLOCK_OVERHEAD, HEADER_LEN};
    let stride = (64 * KIB + BLOCK_OVERHEAD) as usize;
    let h = HEADER_LEN;
    assert_eq!(
        obj.len() as u64,
        s3cryptfs::crypto::format::ciphertext_len(TAMPER_SIZE, 64 * 1024),
        "stored size of {name}"
    );
    match name {
        "flip-body.bin" => obj[h + stride + 1234] ^= 0x01,
        "flip-header.bin" => obj[h - 20] ^= 0x80,
        "flip-last-tag.bin" => {
            let n = obj.len();
            obj[n - 3] ^= 0x10;
        }
        "truncated-block.bin" => {
            // Drops the final (short) block: the size is still a valid encrypted size.
            let n = obj.len();
            obj.truncate(n - (1000 + BLOCK_OVERHEAD as usize));
        }
        "truncated-odd.bin" => {
            let n = obj.len();
            obj.truncate(n - 7);
        }
        "swapped.bin" => {
            let (b0, b1) = (h, h + stride);
            let block0 = obj[b0..b0 + stride].to_vec();
            obj.copy_within(b1..b1 + stride, b0);
            obj[b1..b1 + stride].copy_from_slice(&block0);
        }
        other => panic!("no tampering named {other}"),
    }
    obj
}

/// Reads every regular file that process `pid` has open (only those below `only_under`, if
/// given) and panics if any holds the plaintext marker. Catches plaintext in unlinked staging
/// files, which no directory scan can see.
pub fn assert_no_marker_in_open_files(pid: u32, only_under: Option<&Path>) -> usize {
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries =
        fs::read_dir(&fd_dir).unwrap_or_else(|e| panic!("read {}: {e}", fd_dir.display()));
    let mut scanned = 0;
    for e in entries.flatten() {
        let link = fs::read_link(e.path()).unwrap_or_default();
        if only_under.is_some_and(|dir| !link.starts_with(dir)) {
            continue;
        }
        let Ok(meta) = fs::metadata(e.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(mut f) = File::open(e.path()) else {
            continue;
        };
        let mut bytes = Vec::new();
        if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_end(&mut bytes).is_err() {
            continue;
        }
        scanned += 1;
        assert!(
            !super::super::contains_bytes(&bytes, data::PLAINTEXT_MARKER),
            "plaintext found in a file process {pid} has open: fd {:?} -> {}",
            e.file_name(),
            link.display()
        );
    }
    scanned
}

/// Panics if any file below `dir` holds the marker.
pub fn assert_no_marker_below(dir: &Path) -> usize {
    let files = super::super::files_below(dir);
    for f in &files {
        let bytes = fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        assert!(
            !super::super::contains_bytes(&bytes, data::PLAINTEXT_MARKER),
            "plaintext marker found in {}",
            f.display()
        );
    }
    files.len()
}
