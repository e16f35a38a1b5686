"""One S3 transfer by one client, as its own process (for RSS).

``python -m bench.s3_upload MODE ARGS...`` with the endpoint and credentials
in the standard AWS environment variables (never argv), age keys in
``SEAWALL_BENCH_RECIPIENT`` / ``SEAWALL_BENCH_IDENTITY_FILE``:

- ``store FILE BUCKET KEY``: seawall's store path (``store_stream`` into
  ``S3Storage``, as a backup stores its artifact: sha256 of the stored bytes,
  the background writer, the multipart writer) of an already compressed and
  encrypted file, so no compression or encryption (``compression=none``);
- ``store-6 FILE BUCKET KEY``: the same with 6 parts in flight (the default
  is 4, ADR 0011 addendum 4); ``store-5x8``: 8 parts of 5 MiB in flight
  (more requests open for about the same buffer memory as 8 MiB x 4);
- ``store-sha256 FILE BUCKET KEY``: the same with each part carrying
  ``x-amz-checksum-sha256`` (``part_checksum="SHA256"``, the store path before
  ADR 0011 addendum 3: one more sha256 pass in the client and the server);
- ``backup FILE BUCKET KEY``: the whole backup pipeline of a raw file into
  S3: ``store_stream`` with zstd (default level, all cores) + age X25519, as
  a backup does;
- ``seawall FILE BUCKET KEY``: ``S3Storage.open_atomic_write`` alone, 1 MiB
  writes (the writer without the pipeline);
- ``boto3 FILE BUCKET KEY``: boto3's own ``upload_file`` (TransferManager,
  8 MiB parts, 10 threads by default);
- ``obstore FILE BUCKET KEY``: ``obstore.put`` from the file object (Rust);
- ``restore BUCKET KEY SHA256 SIZE``: seawall's restore read path
  (``decode_to`` as ``postgres restore`` calls it: size check, one read of
  the object into the spool in ``TMPDIR`` while it is hashed, then decrypt
  and decompress from the spool) into a sink that drops the bytes;
- ``restore-prepass BUCKET KEY SHA256 SIZE``: what ``decode_to`` did before
  the spool (session 5): a sha256 pass over the object, then a second read
  that decrypts and decompresses (kept to compare in the same run);
- ``restore-stream BUCKET KEY SHA256 SIZE``: one streaming read with no
  check before decoding (``precheck=False``, as ``qdrant verify`` calls it:
  the sha256 checked at the end; the floor for a one-read restore);
- ``restore-file BUCKET KEY SHA256 SIZE OUT``: seawall's restore into a file
  (``decode_to`` into a ``StagedFile``, as ``postgres restore`` decodes a
  dump and ``qdrant restore`` a snapshot: decoded while downloaded and
  hashed, into a hidden file renamed to OUT when the sha256 matched);
  ``restore-file-one-thread``: the same without the reader thread
  (``decode.STAGED_READ_AHEAD = False``);
  ``restore-file-spooled``: into a plain file through the spool, as a file
  destination was restored before session 7 (the same run's "before");
- ``get BUCKET KEY``: ``S3Storage.open_read`` to the end (the read alone);
- ``get-ranged BUCKET KEY``: the same object as 8 MiB ranged GETs, 4 in
  flight (what a parallel download into the restore spool
  would do; measured to decide whether the spool should be filled that way);
- ``import:<module>``: import the module and exit (import cost).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _storage(bucket: str, part_checksum: str = "CRC32", **kw):  # type: ignore[no-untyped-def]
    from seawall.storage.s3 import S3Storage

    return S3Storage(
        f"s3://{bucket}",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        part_checksum=part_checksum,
        **kw,
    )


class _Drop:
    def write(self, data: bytes) -> int:
        return len(data)


def _seawall(mode: str, argv: list[str]) -> None:
    from seawall.pipeline.decode import decode_to
    from seawall.pipeline.keys import KeyRing
    from seawall.pipeline.store import PipelineSpec, store_stream

    if mode in ("store", "store-6", "store-5x8", "store-sha256", "backup"):
        path, bucket, key = argv
        if mode.startswith("store"):
            spec = PipelineSpec(compression="none", raw_hash=False)
        else:
            keys = KeyRing.build(recipients=[os.environ["SEAWALL_BENCH_RECIPIENT"]])
            spec = PipelineSpec(compression="zstd", keys=keys)
        with open(path, "rb") as src:
            kw = {
                "store-6": {"max_in_flight": 6},
                "store-5x8": {"max_in_flight": 8, "part_size": 5 * 1024 * 1024},
            }.get(mode, {})
            storage = _storage(bucket, "SHA256" if mode == "store-sha256" else "CRC32", **kw)
            res = store_stream(src, storage, key, spec)
        print(res.sha256, res.stored_size)
        return
    if mode in ("restore", "restore-stream", "restore-prepass"):
        bucket, key, sha256, size = argv
        keys = KeyRing.build(identity_files=[Path(os.environ["SEAWALL_BENCH_IDENTITY_FILE"])])
        storage = _storage(bucket)
        if mode == "restore-prepass":
            from seawall.pipeline.decode import sha256_of

            assert sha256_of(storage, key)[0] == sha256
        decode_to(
            storage,
            key,
            _Drop(),
            keys,
            expected_sha256=sha256,
            expected_size=int(size),
            compression="zstd",
            precheck=mode == "restore",
        )
        return
    if mode == "restore-file-spooled":
        # what a file destination got before session 7: the spool, then decode into the file
        bucket, key, sha256, size, out = argv
        keys = KeyRing.build(identity_files=[Path(os.environ["SEAWALL_BENCH_IDENTITY_FILE"])])
        with open(out, "xb") as fh:
            decode_to(
                _storage(bucket), key, fh, keys,
                expected_sha256=sha256, expected_size=int(size), compression="zstd",
            )  # fmt: skip
        return
    if mode in ("restore-file", "restore-file-one-thread"):
        from seawall.pipeline import decode
        from seawall.pipeline.staged import StagedFile

        decode.STAGED_READ_AHEAD = mode == "restore-file"

        bucket, key, sha256, size, out = argv
        keys = KeyRing.build(identity_files=[Path(os.environ["SEAWALL_BENCH_IDENTITY_FILE"])])
        with StagedFile(Path(out)) as staged:
            decode_to(
                _storage(bucket), key, staged, keys,
                expected_sha256=sha256, expected_size=int(size), compression="zstd",
            )  # fmt: skip
            staged.commit()
        return
    if mode == "get-ranged":
        from concurrent.futures import ThreadPoolExecutor

        bucket, key = argv
        storage = _storage(bucket)
        client, full = storage.client, key
        size = int(client.head_object(Bucket=bucket, Key=full)["ContentLength"])
        part = 8 << 20

        def fetch(start: int) -> int:
            rng = f"bytes={start}-{min(start + part, size) - 1}"
            body = client.get_object(Bucket=bucket, Key=full, Range=rng)["Body"]
            return len(body.read())

        with ThreadPoolExecutor(4) as pool:
            assert sum(pool.map(fetch, range(0, size, part))) == size
        return
    if mode == "get":
        bucket, key = argv
        with _storage(bucket).open_read(key) as fh:
            while fh.read(1024 * 1024):
                pass
        return
    raise SystemExit(f"unknown mode {mode}")


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode.startswith("import:"):
        __import__(mode.split(":", 1)[1])
        return 0
    if mode not in ("seawall", "boto3", "obstore"):
        _seawall(mode, argv[1:])
        return 0
    path, bucket, key = argv[1:4]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    if mode == "seawall":
        storage = _storage(bucket)
        with open(path, "rb") as src, storage.open_atomic_write(key) as dst:
            while chunk := src.read(1024 * 1024):
                dst.write(chunk)
    elif mode == "boto3":
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
        )
        client.upload_file(path, bucket, key)
    else:
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            bucket,
            endpoint=endpoint,
            region=os.environ.get("AWS_REGION", "us-east-1"),
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        with open(path, "rb") as src:
            obstore.put(store, key, src, chunk_size=8 * 1024 * 1024, max_concurrency=4)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
