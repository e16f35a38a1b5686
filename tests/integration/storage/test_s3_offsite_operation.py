"""Off-site operation on a real SeaweedFS, as an operator meets it: more than a
page of anything, a mirror whose copy rotted at rest, a mirror holding what the
primary lost. Each test here reproduced a defect before its fix.
"""

from __future__ import annotations

from collections.abc import Callable

from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.support.s3server import S3Server


def _storage(server: S3Server, bucket: str, **kw: object) -> S3Storage:
    args: dict[str, object] = {
        "endpoint_url": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "retry": RetryPolicy(deadline=30.0),
    }
    args.update(kw)
    return S3Storage(f"s3://{bucket}/repo", **args)  # type: ignore[arg-type]


def test_more_than_a_page_of_abandoned_uploads_are_all_listed_and_aborted(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """1,050 uploads abandoned by killed runs: every one is a temporary prune can delete.

    SeaweedFS pages ListMultipartUploads by upload id (``NextUploadIdMarker``,
    no ``NextKeyMarker``); the listing stopped after the first 1,000, so the
    rest were never cleaned up by prune (the primary) or sync (a mirror).
    """
    bucket = bucket_factory(s3_server)
    admin = s3_server.client()
    keys = [f"repo/wal/16/{i:024X}.zst" for i in range(1050)]
    for key in keys:
        admin.create_multipart_upload(Bucket=bucket, Key=key)
    storage = _storage(s3_server, bucket)  # the default page: S3's maximum, 1,000

    partials = list(storage.list_partials())
    assert len(partials) == len(keys)
    assert {p.key.rsplit(".partial-", 1)[0] for p in partials} == {k[5:] for k in keys}
    assert len([i for i, partial in storage.walk("wal") if partial]) == len(keys)

    for p in partials:
        storage.delete(p.key)
    assert list(storage.list_partials()) == []
    left = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert left == []
