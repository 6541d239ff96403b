#!/usr/bin/env python3
"""Turns the benchmark's result files into one markdown table.

    report.py RESULTS_DIR SIZE_MIB CONTENDER...

RESULTS_DIR holds NAME.REP files of `metric value` lines (value a number, or `fail:WHY`). Each
cell is the median over the repetitions; the last column is s3cryptfs / the best peer (the FUSE
peers only, not the raw server): above 1 means s3cryptfs is ahead on a higher-is-better row, below
1 means it is ahead on a lower-is-better row. When both `s3cryptfs` and `s3cryptfs-plain` (the
same vault with plaintext names) ran, a column more gives encrypted / plain names (above 1: the
encrypted names cost that much more time, or give that much more throughput).
"""

import os
import statistics
import sys

HIGHER, LOWER = "higher", "lower"
# key, label, which is better, decimals
METRICS = [
    ("seq_write_mibs", "seq write {size}, durable (MiB/s)", HIGHER, 0),
    ("seq_write_single_mibs", "seq write {size}, one PUT stream (MiB/s)", HIGHER, 0),
    ("seq_read_mibs", "seq read {size}, cold (MiB/s)", HIGHER, 0),
    ("seq_read_single_mibs", "seq read {size}, one GET stream (MiB/s)", HIGHER, 0),
    ("rand_iops", "random 4 KiB read, iodepth 1 (IOPS)", HIGHER, 0),
    ("rand_p50_ms", "random 4 KiB read p50 (ms)", LOWER, 2),
    ("rand_p99_ms", "random 4 KiB read p99 (ms)", LOWER, 2),
    ("create_s", "create 1,000 x 4 KiB, durable (s)", LOWER, 2),
    ("ls_cold_s", "`ls -l` 1,000 files, cold (s)", LOWER, 3),
    ("ls_warm_s", "`ls -l` 1,000 files, warm (s)", LOWER, 3),
    ("rsync_s", "rsync 2,000 files / 197 MiB, durable (s)", LOWER, 1),
    ("rsync2_s", "rsync no-change after remount (s)", LOWER, 2),
    ("rsync2_sent", "rsync no-change: files re-sent", LOWER, 0),
    ("rsync3_s", "rsync no-change after a second remount (s)", LOWER, 2),
    ("rsync3_sent", "rsync no-change, second remount: files re-sent", LOWER, 0),
    ("sha_s", "`sha256sum -c` of the tree, cold (s)", LOWER, 1),
    ("sha_bad", "`sha256sum -c`: files failing", LOWER, 0),
    ("du_s", "`du -s` of the tree (s)", LOWER, 3),
    ("rm_s", "`rm -rf` of everything (s)", LOWER, 1),
    ("rss_write_mib", "peak RSS: seq write (MiB)", LOWER, 0),
    ("rss_read_mib", "peak RSS: seq read (MiB)", LOWER, 0),
    ("rss_rand_mib", "peak RSS: random read (MiB)", LOWER, 0),
    ("rss_create_mib", "peak RSS: creates + ls (MiB)", LOWER, 0),
    ("rss_rsync_mib", "peak RSS: rsync (MiB)", LOWER, 0),
    ("rss_sha_mib", "peak RSS: sha256sum + du + rm (MiB)", LOWER, 0),
    ("cpu_write_s", "daemon CPU: seq write (s)", LOWER, 1),
    ("cpu_read_s", "daemon CPU: seq read (s)", LOWER, 1),
    ("cpu_rand_s", "daemon CPU: random read (s)", LOWER, 1),
    ("cpu_create_s", "daemon CPU: creates + ls (s)", LOWER, 1),
    ("cpu_rsync_s", "daemon CPU: rsync (s)", LOWER, 1),
    ("cpu_sha_s", "daemon CPU: sha256sum + du + rm (s)", LOWER, 1),
]

TITLES = {
    "s3cryptfs": "s3cryptfs",
    "s3cryptfs-plain": "s3cryptfs, plain names",
    "rclone-off": "rclone crypt, cache off",
    "rclone-writes": "rclone crypt, cache writes",
    "s3fs": "s3fs",
    "raw": "raw server (boto3)",
}
PEERS = ("rclone-off", "rclone-writes", "s3fs")


def load(results, name):
    """metric -> list of values (floats or failure strings), over the repetitions."""
    out = {}
    for fname in sorted(os.listdir(results)):
        base, _, rep = fname.rpartition(".")
        if base != name or not rep.isdigit():
            continue
        with open(os.path.join(results, fname)) as f:
            for line in f:
                parts = line.split(None, 1)
                if len(parts) != 2:
                    continue
                key, val = parts[0], parts[1].strip()
                try:
                    out.setdefault(key, []).append(float(val))
                except ValueError:
                    out.setdefault(key, []).append(val)
    return out


def cell(values):
    """(median or None, text) of one contender's values for one metric."""
    if not values:
        return None, "—"
    nums = [v for v in values if isinstance(v, float)]
    fails = [v for v in values if not isinstance(v, float)]
    if not nums:
        return None, fails[0].replace("fail:", "fails: ")
    med = statistics.median(nums)
    return med, med


def quotient(a, b):
    """a / b as a table cell."""
    if a is None or b is None:
        return "—"
    if b > 0:
        return f"{a / b:.2f}"
    return "equal" if a == 0 else "—"


def fmt(v, decimals):
    return f"{v:,.{decimals}f}"


def main(results, size_mib, names):
    size = f"{size_mib // 1024} GiB" if size_mib % 1024 == 0 else f"{size_mib} MiB"
    data = {n: load(results, n) for n in names}
    names_col = "s3cryptfs" in names and "s3cryptfs-plain" in names
    head = ["metric"] + [TITLES.get(n, n) for n in names] + ["s3cryptfs / best peer"]
    if names_col:
        head.append("encrypted / plain names")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key, label, better, dec in METRICS:
        if not any(key in data[n] for n in names):
            continue
        row = [label.format(size=size)]
        meds = {}
        for n in names:
            med, text = cell(data[n].get(key, []))
            meds[n] = med
            row.append(fmt(text, dec) if isinstance(text, float) else text)
        peers = [meds[p] for p in PEERS if meds.get(p) is not None]
        mine = meds.get("s3cryptfs")
        ratio = "—"
        if peers and mine is not None:
            best = max(peers) if better == HIGHER else min(peers)
            if best > 0:
                ratio = f"{mine / best:.2f}"
            elif mine == 0:
                ratio = "equal"
        row.append(ratio)
        if names_col:
            row.append(quotient(meds.get("s3cryptfs"), meds.get("s3cryptfs-plain")))
        print("| " + " | ".join(row) + " |")
    reps = {n: len({f for f in os.listdir(results) if f.rpartition(".")[0] == n}) for n in names}
    print()
    print("Repetitions per contender (medians shown): " +
          ", ".join(f"{TITLES.get(n, n)} {reps[n]}" for n in names))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
