//! Deterministic test data: a random-access pseudo-random byte stream (byte `i` of stream
//! `seed` is a pure function of both), streamed writes and comparisons that never hold a whole
//! big file in memory, and SHA-256 of files and streams.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Chunk used for streaming writes and comparisons.
pub const CHUNK: usize = 1024 * 1024;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

/// SplitMix64's output function: a good 64-bit mix, used as a counter-based generator.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn word(seed: u64, index: u64) -> [u8; 8] {
    mix(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ index).to_le_bytes()
}

/// Fills `buf` with bytes `offset..offset + buf.len()` of stream `seed`.
pub fn fill_stream(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Bytes `offset..offset + len` of stream `seed`.
pub fn stream_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_stream(seed, offset, &mut v);
    v
}

/// Writes `len` bytes of stream `seed` to `w` in chunks.
pub fn write_stream(w: &mut impl Write, seed: u64, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        fill_stream(seed, done, &mut buf[..n]);
        w.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Creates (or replaces) `path` with `len` bytes of stream `seed`; closes it.
pub fn write_stream_file(path: &Path, seed: u64, len: u64) {
    let mut f = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    write_stream(&mut f, seed, len).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    f.sync_all()
        .unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Panics unless `path` holds exactly `len` bytes of stream `seed`, naming the first
/// differing offset. Streams the comparison chunk by chunk.
pub fn assert_stream_file(path: &Path, seed: u64, len: u64) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    assert_eq!(meta.len(), len, "size of {}", path.display());
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut got = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = read_full(&mut f, &mut got)
            .unwrap_or_else(|e| panic!("read {} at {pos}: {e}", path.display()));
        let expect_n = (len - pos).min(CHUNK as u64) as usize;
        assert_eq!(
            n,
            expect_n,
            "{}: short read at offset {pos} (file should be {len} bytes)",
            path.display()
        );
        if n == 0 {
            break;
        }
        fill_stream(seed, pos, &mut want[..n]);
        if got[..n] != want[..n] {
            let i = (0..n).find(|&i| got[i] != want[i]).unwrap_or(0);
            panic!(
                "{}: content differs from the expected stream at offset {} (got {:#04x}, want {:#04x})",
                path.display(),
                pos + i as u64,
                got[i],
                want[i]
            );
        }
        pos += n as u64;
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> [u8; 32] {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n =
            read_full(&mut f, &mut buf).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().into()
}

/// SHA-256 of the first `len` bytes of stream `seed`.
pub fn sha256_stream(seed: u64, len: u64) -> [u8; 32] {
    struct HashWriter(Sha256);
    impl Write for HashWriter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.update(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    write_stream(&mut w, seed, len).expect("hashing never fails");
    w.0.finalize().into()
}

/// Panics unless the two files have the same bytes (streamed), naming the first difference.
pub fn assert_same_file(a: &Path, b: &Path) {
    let la = std::fs::metadata(a).unwrap_or_else(|e| panic!("stat {}: {e}", a.display()));
    let lb = std::fs::metadata(b).unwrap_or_else(|e| panic!("stat {}: {e}", b.display()));
    assert_eq!(
        la.len(),
        lb.len(),
        "sizes of {} and {}",
        a.display(),
        b.display()
    );
    let mut fa = File::open(a).unwrap_or_else(|e| panic!("open {}: {e}", a.display()));
    let mut fb = File::open(b).unwrap_or_else(|e| panic!("open {}: {e}", b.display()));
    let mut ba = vec![0u8; CHUNK];
    let mut bb = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let na =
            read_full(&mut fa, &mut ba).unwrap_or_else(|e| panic!("read {}: {e}", a.display()));
        let nb =
            read_full(&mut fb, &mut bb).unwrap_or_else(|e| panic!("read {}: {e}", b.display()));
        assert_eq!(
            na,
            nb,
            "{} and {} differ in length at {pos}",
            a.display(),
            b.display()
        );
        if na == 0 {
            return;
        }
        if ba[..na] != bb[..nb] {
            let i = (0..na).find(|&i| ba[i] != bb[i]).unwrap_or(0);
            panic!(
                "{} and {} differ at offset {}",
                a.display(),
                b.display(),
                pos + i as u64
            );
        }
        pos += na as u64;
    }
}

/// A marker that must never appear in any stored byte: long enough that ciphertext cannot
/// contain it by chance.
pub const PLAINTEXT_MARKER: &[u8] = b"S3CRYPTFS-PLAINTEXT-MARKER-7f3a9c-do-not-store-me;";

/// `MARKER` repeated to `len` bytes.
pub fn marker_bytes(len: usize) -> Vec<u8> {
    PLAINTEXT_MARKER.iter().copied().cycle().take(len).collect()
}
