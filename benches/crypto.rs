//! Seal and open throughput of one object block, per block size (4 KiB .. 1 MiB), on one core.
//!
//! `cargo bench --bench crypto`. The target is >= 1 GB/s per core per direction, so
//! that encryption never limits a mount; criterion reports the rate as `thrpt` (bytes of
//! plaintext per second).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use s3cryptfs::crypto::format::ciphertext_len;
use s3cryptfs::crypto::{ObjectOpener, ObjectSealer, Secret, VaultConfig, VaultKeys};
use zeroize::Zeroizing;

const BLOCK_SIZES: [u32; 5] = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Blocks per benchmark object: block 0 is a full, non-last block (the common case).
const BLOCKS: u64 = 4;

fn vault(block_size: u32) -> VaultKeys {
    let secret = Secret::KeyFile(Zeroizing::new([7u8; 32]));
    VaultConfig::create(&secret, block_size)
        .expect("a valid block size creates a vault")
        .1
}

fn seal_open(c: &mut Criterion) {
    let mut seal = c.benchmark_group("seal_block");
    for bs in BLOCK_SIZES {
        let keys = vault(bs);
        let sealer = ObjectSealer::new(&keys).expect("sealer");
        let plain = vec![0x5au8; bs as usize];
        seal.throughput(Throughput::Bytes(u64::from(bs)));
        seal.bench_with_input(BenchmarkId::from_parameter(bs), &plain, |b, plain| {
            b.iter(|| sealer.seal_block(0, black_box(plain), false).expect("seal"))
        });
    }
    seal.finish();

    let mut open = c.benchmark_group("open_block");
    for bs in BLOCK_SIZES {
        let keys = vault(bs);
        let sealer = ObjectSealer::new(&keys).expect("sealer");
        let plain = vec![0x5au8; bs as usize];
        let plaintext_len = BLOCKS * u64::from(bs);
        let header = sealer.header(plaintext_len);
        let opener = ObjectOpener::open(&keys, &header, ciphertext_len(plaintext_len, bs))
            .expect("opener for the object just sealed");
        let sealed = sealer.seal_block(0, &plain, false).expect("seal");
        open.throughput(Throughput::Bytes(u64::from(bs)));
        open.bench_with_input(BenchmarkId::from_parameter(bs), &sealed, |b, sealed| {
            b.iter(|| opener.open_block(0, black_box(sealed)).expect("open"))
        });
    }
    open.finish();
}

criterion_group!(benches, seal_open);
criterion_main!(benches);
