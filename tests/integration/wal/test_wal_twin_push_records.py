"""Two pushes of one segment into S3 with MIRRORS; one's own PUT fails after the other committed.

B writes the mirror's intent record ``mirrors/<id>/pending/<key>`` (it created it,
so it would remove it when its push stores nothing); A, a lean ``wal-push`` of the
same file in another process (the async pusher and PostgreSQL's wal-push; the lean
S3 path takes no lease), finds the record, writes none of its own and commits; A is
then SIGKILLed before its copy step (a relay holds its first request after the
commit, tests/support/holdproxy.py). B's PUT fails. B must keep the record: the
primary holds the segment, the mirror does not, and the record is what ``seawall
sync`` completes the mirror from. B is this test's process: the lean S3 push
(postgres/wal/s3push.py) and the general path (push_wal with MirroredStorage.intend,
COMPRESSION zstd as the lean one, so both name one key).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.storage.location import parse_location
from seawall.storage.mirror_layout import mirror_id, pending_prefix
from tests.conftest import SEAWALL, run_seawall
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.wal.s3helpers import _env, _keys
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.holdproxy import HoldingProxy
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # fixture used by name below

NAME = "000000010000000400000007"
_WHERE: list[tuple[S3Server, str]] = []  # this test's server and bucket


def _twin_commits_then_dies(env: dict[str, str], seg: Path, proxy: HoldingProxy) -> None:
    """A: a real lean wal-push of ``seg`` through ``proxy``, killed right after its commit
    (B has written the mirror's record by now: A finds it and writes none)."""
    server, bucket = _WHERE[0]
    assert [k for k in _keys(server, bucket) if "/pending/" in k and f"/{NAME}-" in k]
    proxy.arm_after_commit()
    proc = subprocess.Popen(
        [SEAWALL, "postgres", "wal-push", str(seg)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        held = proxy.holding.wait(120)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        proxy.after_commit = False
        proxy.release.set()
    assert held, f"the twin never committed: {err}"


def _setup(
    s3_server: S3Server, tmp_path: Path, public: str
) -> tuple[str, Path, Path, dict[str, str], dict[str, str], HoldingProxy]:
    bucket = new_bucket(s3_server)
    _WHERE[:] = [(s3_server, bucket)]
    mirror = tmp_path / "mirror"
    seg = segment(tmp_path, NAME)
    proxy = HoldingProxy(s3_server.ports["s3"])
    env_b = _env(s3_server, f"s3://{bucket}/repo", public, MIRRORS=str(mirror))
    env_a = {**env_b, "AWS_ENDPOINT_URL": proxy.endpoint}
    return bucket, mirror, seg, env_a, env_b, proxy


def _check_kept_and_synced(
    s3_server: S3Server, bucket: str, mirror: Path, env: dict[str, str]
) -> None:
    keys = _keys(s3_server, bucket)
    (stored,) = [k for k in keys if f"/{NAME}-" in k and "/mirrors/" not in k]
    key = stored.removeprefix("repo/")
    record = f"repo/{pending_prefix(mirror_id(str(parse_location(str(mirror)))))}/{key}"
    assert not (mirror / key).exists()
    assert record in keys, f"the primary holds {key}, the mirror not, and no record says so"
    res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    assert res.returncode == 0, res.stderr
    assert record not in _keys(s3_server, bucket)
    blob = s3_server.client().get_object(Bucket=bucket, Key=stored)["Body"].read()
    assert (mirror / key).read_bytes() == blob


def _failing_after(
    twin: Callable[[], None], real: Callable[..., object], exc: BaseException
) -> Callable[..., object]:
    def fail(*args: object, **kw: object) -> object:
        twin()
        raise exc

    return fail


def test_lean_s3_push_whose_put_fails_keeps_the_twins_record(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.postgres.wal import s3push
    from seawall.storage.s3 import lean
    from seawall.storage.s3.leanconf import S3Error

    bucket, mirror, seg, env_a, env_b, proxy = _setup(s3_server, tmp_path, age_keys[1])
    real_put = lean.Client.put

    def put(self: lean.Client, key: str, *args: object, **kw: object) -> int:
        if f"/{NAME}-" in key and not key.startswith("mirrors/"):  # B's segment, no record
            _twin_commits_then_dies(env_a, seg, proxy)
            raise S3Error("server", f"writing {NAME}: 500 InternalError (made to fail)", 500)
        return real_put(self, key, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(lean.Client, "put", put)
    mirrors = [(mirror_id(loc), loc) for loc in [str(parse_location(str(mirror)))]]
    try:
        with pytest.raises(S3Error, match="made to fail"):
            s3push.push(str(seg), env=env_b, mirrors=mirrors)
    finally:
        monkeypatch.setattr(lean.Client, "put", real_put)
        proxy.close()
    _check_kept_and_synced(s3_server, bucket, mirror, env_b)


def test_general_push_whose_store_fails_keeps_the_twins_record(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.errors import StorageError
    from seawall.postgres.wal import push as general
    from seawall.postgres.wal.envconfig import load_wal_config
    from seawall.runner.wal_fast import _mirrored

    bucket, mirror, seg, env_a, env_b, proxy = _setup(s3_server, tmp_path, age_keys[1])
    for var in list(os.environ):
        if var.startswith(("SEAWALL_", "AWS_", "ENCRYPTION", "BACKUP_DIR", "MIRRORS")):
            monkeypatch.delenv(var)
    for k, v in env_b.items():
        monkeypatch.setenv(k, v)
    cfg = load_wal_config()
    repo = _mirrored(str(cfg.backup_dir))
    assert repo is not None
    fail = StorageError(f"writing {NAME}: the server failed (made to fail)")
    twin = lambda: _twin_commits_then_dies(env_a, seg, proxy)  # noqa: E731
    monkeypatch.setattr(
        general, "_store_one_shot", _failing_after(twin, general._store_one_shot, fail)
    )
    monkeypatch.setattr(general, "store_stream", _failing_after(twin, general.store_stream, fail))
    try:
        with pytest.raises(StorageError, match="made to fail"):
            general.push_wal(cfg, seg, intend=repo.intend)
    finally:
        monkeypatch.undo()
        proxy.close()
    _check_kept_and_synced(s3_server, bucket, mirror, env_b)
