#!/usr/bin/env python3
"""Generates the benchmark's rsync tree: 2,000 files, about 200 MiB, nested, mixed sizes.

    tree.py DIR     create DIR (must not exist) and DIR.sha256 (a `sha256sum -c` manifest with
                    paths relative to DIR)

The layout is fixed (20 top directories x 5 subdirectories x 20 files); the sizes follow a fixed
seed: 75 % small (1-32 KiB), 22 % medium (32-256 KiB), 3 % large (1-3 MiB), the mix of a home
directory or a source tree with some media. The contents are random, so nothing compresses.
"""

import hashlib
import os
import random
import sys


def size_for(rnd):
    r = rnd.random()
    if r < 0.75:
        return rnd.randint(1 << 10, 32 << 10)
    if r < 0.97:
        return rnd.randint(32 << 10, 256 << 10)
    return rnd.randint(1 << 20, 3 << 20)


def main(root):
    rnd = random.Random(2026)
    os.makedirs(root)
    lines = []
    total = 0
    for top in range(20):
        for sub in range(5):
            d = os.path.join(root, f"d{top:02d}", f"s{sub}")
            os.makedirs(d)
            for i in range(20):
                rel = os.path.join(f"d{top:02d}", f"s{sub}", f"f{i:02d}.bin")
                data = os.urandom(size_for(rnd))
                with open(os.path.join(root, rel), "wb") as f:
                    f.write(data)
                total += len(data)
                lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
    with open(root.rstrip("/") + ".sha256", "w") as f:
        f.writelines(lines)
    print(f"{len(lines)} files, {total / (1 << 20):.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
