"""WAL on S3 as an operator meets it: a prefix with characters S3's XML escapes
(push, push again, fetch), and an S3 primary that lost a segment its mirror holds.

SeaweedFS (Go's encoding/xml) writes ``'`` in a listed key as ``&#39;``; the
lean client decoded only the five named entities, so every key under
``s3://bucket/o'brien`` came back mangled: wal-fetch found nothing and
answered "not archived" (exit 1), which ends a recovery early without a word.
"""

from __future__ import annotations

from pathlib import Path

from seawall.storage.s3.leanhttp import xml_values
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.wal.s3helpers import _env, _fetch, _keys, _push
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # the fixture, used by name below

PREFIX = 'team\'s "wal" & <more>/é'


def test_lean_push_and_fetch_under_a_prefix_the_xml_escapes(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}/{PREFIX}", SEAWALL_WAL_READ_AHEAD="0")
    seg = segment(tmp_path, "000000010000000000000031")
    first = _push(seg, env)
    assert first.returncode == 0, first.stderr
    again = _push(seg, env)  # the same segment again: found by listing, not stored twice
    assert again.returncode == 0, again.stderr
    stored = [k for k in _keys(s3_server, bucket) if seg.name in k]
    assert len(stored) == 1 and stored[0].startswith(f"{PREFIX}/postgresql/wal/"), stored

    dest = tmp_path / "RECOVERYXLOG"
    res = _fetch(seg.name, dest, env)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == seg.read_bytes()


def test_numeric_character_references_are_decoded() -> None:
    body = b"<K>o&#39;b &#x27;&amp;&lt;&#34;&#233;</K><K>a & b &#; &#xZZ;</K>"
    assert xml_values(body, "K") == ["o'b '&<\"\u00e9", "a & b &#; &#xZZ;"]


def test_fetch_reads_the_mirror_when_the_s3_primary_lost_the_segment(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """An S3 primary that lost a segment its mirror still holds: the lean fetch
    answered "not in the archive" (exit 1, quietly), which ends a recovery there
    (the local lean fetch already handed such a miss to the mirrors)."""
    primary, mirror = new_bucket(s3_server), new_bucket(s3_server)
    env = _env(
        s3_server,
        f"s3://{primary}/repo",
        MIRRORS=f"s3://{mirror}/dr",
        SEAWALL_WAL_READ_AHEAD="0",
        SEAWALL_WAL_FETCH_VERBOSE="1",
    )
    seg = segment(tmp_path, "000000010000000000000041")
    res = _push(seg, env)
    assert res.returncode == 0, res.stderr
    [in_primary] = [k for k in _keys(s3_server, primary) if seg.name in k]
    assert [k for k in _keys(s3_server, mirror) if seg.name in k]
    s3_server.client().delete_object(Bucket=primary, Key=in_primary)  # the primary lost it

    dest = tmp_path / "RECOVERYXLOG"
    res = _fetch(seg.name, dest, env)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == seg.read_bytes()
    assert f"read from mirror s3://{mirror}/dr" in res.stderr
    # a segment in neither is still the quiet "not archived" that ends recovery
    res = _fetch("000000010000000000000042", tmp_path / "next", env)
    assert res.returncode == 1 and "is not in the archive" in res.stderr
    assert not (tmp_path / "next").exists()
