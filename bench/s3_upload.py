"""One upload of a local file to S3 by one client, as its own process (for RSS).

``python -m bench.s3_upload MODE FILE BUCKET KEY`` with the endpoint and
credentials in the standard AWS environment variables (never argv):

- ``seawall``: seawall's S3Storage (boto3 underneath), streaming the file
  through ``open_atomic_write`` in 1 MiB writes as the pipeline does;
- ``boto3``: boto3's own ``upload_file`` (TransferManager, 8 MiB parts,
  10 threads by default);
- ``obstore``: ``obstore.put`` from the file object (Rust, object_store);
- ``import:<module>``: import the module and exit (import cost).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode.startswith("import:"):
        __import__(mode.split(":", 1)[1])
        return 0
    path, bucket, key = argv[1:4]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    if mode == "seawall":
        from seawall.storage.s3 import S3Storage

        storage = S3Storage(f"s3://{bucket}", endpoint_url=endpoint)
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
    elif mode == "obstore":
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
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
