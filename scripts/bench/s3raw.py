#!/usr/bin/env python3
"""The benchmark's S3 side: buckets, and the raw server measured with a plain S3 client.

    s3raw.py mkbucket NAME...        create buckets (an existing one is fine)
    s3raw.py rmbucket NAME...        delete every object (and pending upload) and the bucket
    s3raw.py count NAME              print the number of objects and their total size
    s3raw.py raw BUCKET SIZE_MIB OUT run the ceiling workload, write `metric value` lines to OUT

Endpoint and credentials come from BENCH_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
The ceiling is boto3 with a thread pool: one PUT/GET stream and STREAMS parallel 8 MiB parts
or ranges, 4 KiB ranged GETs one at a time (latency), 1,000 small PUTs and one listing of them.
Payloads come from memory, never from disk, so only the server and the network stack count.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PART = 8 << 20
STREAMS = 8


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["BENCH_ENDPOINT"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=STREAMS * 2,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def mkbucket(s3, names):
    for name in names:
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass


def empty_bucket(s3, name):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    try:
        uploads = s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
    except ClientError as e:
        # s3rver does not implement ListMultipartUploads (501 NotImplemented).
        if e.response.get("Error", {}).get("Code") != "NotImplemented":
            raise
        uploads = []
    for up in uploads:
        s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])


def rmbucket(s3, names):
    for name in names:
        try:
            empty_bucket(s3, name)
            s3.delete_bucket(Bucket=name)
        except s3.exceptions.NoSuchBucket:
            pass


def count(s3, name):
    n = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            n += 1
            total += o["Size"]
    print(n, total)


def mib_per_s(nbytes, seconds):
    return nbytes / (1 << 20) / seconds


def put_multipart(s3, bucket, key, data, streams):
    """Multipart upload of `data` with `streams` parts in flight; returns seconds."""
    view = memoryview(data)
    t0 = time.monotonic()
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def part(i):
        body = view[i * PART : (i + 1) * PART]
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=bytes(body))
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    nparts = (len(data) + PART - 1) // PART
    with ThreadPoolExecutor(streams) as pool:
        parts = list(pool.map(part, range(nparts)))
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    return time.monotonic() - t0


def get_ranges(s3, bucket, key, size, streams):
    """Reads the object as 8 MiB ranges, `streams` in flight; returns seconds."""

    def rng(i):
        end = min(size, (i + 1) * PART) - 1
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={i * PART}-{end}")["Body"]
        n = 0
        for chunk in body.iter_chunks(1 << 20):
            n += len(chunk)
        return n

    t0 = time.monotonic()
    with ThreadPoolExecutor(streams) as pool:
        got = sum(pool.map(rng, range((size + PART - 1) // PART)))
    if got != size:
        raise SystemExit(f"ranged GET returned {got} bytes, expected {size}")
    return time.monotonic() - t0


def get_whole(s3, bucket, key, size):
    t0 = time.monotonic()
    n = 0
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        n += len(chunk)
    if n != size:
        raise SystemExit(f"GET returned {n} bytes, expected {size}")
    return time.monotonic() - t0


def small_gets(s3, bucket, key, size, seconds):
    """4 KiB ranged GETs at random aligned offsets, one at a time, for `seconds`."""
    import random

    rnd = random.Random(7)
    lat = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        off = rnd.randrange(size // 4096) * 4096
        t0 = time.monotonic()
        s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={off}-{off + 4095}")["Body"].read()
        lat.append(time.monotonic() - t0)
    lat.sort()
    return len(lat) / seconds, lat[len(lat) // 2], lat[min(len(lat) - 1, len(lat) * 99 // 100)]


def raw(s3, bucket, size_mib, out):
    size = size_mib << 20
    data = os.urandom(size)
    res = {}
    # One stream: a multipart upload with one part in flight (a single PUT of 1 GiB is not what
    # any client does). Then STREAMS parts in flight.
    res["seq_write_single_mibs"] = mib_per_s(size, put_multipart(s3, bucket, "big1", data, 1))
    res["seq_write_mibs"] = mib_per_s(size, put_multipart(s3, bucket, "big", data, STREAMS))
    s3.delete_object(Bucket=bucket, Key="big1")
    del data
    res["seq_read_single_mibs"] = mib_per_s(size, get_whole(s3, bucket, "big", size))
    res["seq_read_mibs"] = mib_per_s(size, get_ranges(s3, bucket, "big", size, STREAMS))
    iops, p50, p99 = small_gets(s3, bucket, "big", size, 10)
    res["rand_iops"], res["rand_p50_ms"], res["rand_p99_ms"] = iops, p50 * 1e3, p99 * 1e3
    small = b"\x5a" * 4096
    t0 = time.monotonic()
    for i in range(1000):
        s3.put_object(Bucket=bucket, Key=f"small/f{i:04d}", Body=small)
    res["create_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="small/"):
        n += len(page.get("Contents", []))
    res["ls_cold_s"] = time.monotonic() - t0
    if n != 1000:
        raise SystemExit(f"listing returned {n} objects, expected 1000")
    t0 = time.monotonic()
    empty_bucket(s3, bucket)
    res["rm_s"] = time.monotonic() - t0
    with open(out, "w") as f:
        for k, v in res.items():
            f.write(f"{k} {v:.3f}\n")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    s3 = client()
    cmd, args = argv[1], argv[2:]
    if cmd == "mkbucket":
        mkbucket(s3, args)
    elif cmd == "rmbucket":
        rmbucket(s3, args)
    elif cmd == "count":
        count(s3, args[0])
    elif cmd == "raw":
        raw(s3, args[0], int(args[1]), args[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
