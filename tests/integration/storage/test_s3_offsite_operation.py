"""Off-site operation on a real SeaweedFS, as an operator meets it: more than a
page of anything, a mirror whose copy rotted at rest, a mirror holding what the
primary lost. Each test here reproduced a defect before its fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, seawall_env
from tests.integration.storage.test_mirrors_s3 import only_manifest, s3_env
from tests.support.pgcluster import PgCluster
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


def test_sync_deep_finds_and_repairs_a_mirror_copy_rotted_at_rest(
    pg: PgCluster,
    backup_dir: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    """A flipped byte in the mirror's dump (same size): ``sync`` compared sizes only
    and called the mirror complete; the DR copy was unusable and nothing said so.
    ``sync --deep`` reads the mirror's copies, names the damaged one, copies it
    again from the (checked) primary; then the primary loses the dump: sync names
    the object the mirror alone still holds, keeps it, and restore reads it."""
    bucket = bucket_factory(s3_server)
    mirror = f"s3://{bucket}/repo"
    pg.psql("CREATE DATABASE shop")
    pg.psql(SMALL_SQL, "shop")
    expected = db_state(pg, "shop")
    env = seawall_env(pg, backup_dir, MIRRORS=mirror, **s3_env(s3_server))
    res = run_seawall(["postgres", "backup", "--database", "shop"], env)
    assert res.returncode == 0, res.stderr
    m = only_manifest(backup_dir, "shop")
    dump = next(a for a in m["artifacts"] if a["role"] == "dump")
    key = f"postgresql/logical/shop/{m['id']}/{dump['name']}"
    good = (backup_dir / key).read_bytes()

    admin = s3_server.client()
    rotted = bytearray(good)
    rotted[len(rotted) // 2] ^= 0x08
    admin.put_object(Bucket=bucket, Key=f"repo/{key}", Body=bytes(rotted))

    res = run_seawall(["sync", "--deep", "--dry-run", "--json"], env)
    assert res.returncode == 0, res.stderr
    [plan] = json.loads(res.stdout)["mirrors"]
    assert [d["key"] for d in plan["damaged"]] == [key]
    assert [c["key"] for c in plan["copied"]] == [key]
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == bytes(rotted)

    res = run_seawall(["sync", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert f"DAMAGED    {key}: sha256" in res.stdout and "mirror complete" in res.stdout
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == good
    res = run_seawall(["sync", "--deep", "--json"], env)
    [again] = json.loads(res.stdout)["mirrors"]
    assert (again["damaged"], again["copied"], again["complete"]) == ([], [], True)

    # the primary loses the dump: sync keeps the mirror's copy and says so
    (backup_dir / key).unlink()
    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr
    [lost] = json.loads(res.stdout)["mirrors"]
    assert lost["only_in_mirror"] == [key] and lost["deleted"] == []
    assert f"{key} is in the mirror only" in res.stderr
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == good
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "shop_dr"], env)
    assert res.returncode == 0, res.stderr
    assert f"mirror {mirror}" in res.stderr
    assert db_state(pg, "shop_dr")["contents"] == expected["contents"]
