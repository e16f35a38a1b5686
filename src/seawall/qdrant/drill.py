"""The Qdrant part of ``seawall drill``: restore a snapshot aside, search it, delete it.

The newest snapshot of a collection is restored with ``seawall qdrant
restore``'s own streamed, checksummed upload into a scratch collection
``seawall_drill_<drill id>_<collection>`` (shortened, with a digest, to fit
Qdrant's 255 limit), never into the collection itself.
Then the exact points count is compared with the one recorded at backup
time, and each sample point recorded at backup time is searched by its own
vector: it must come back among the top hits, and where the backup also
recorded the top hits of that search on the live collection, the same ids
must come back. The scratch collection is deleted whatever happened; one a
kill -9 left behind carries the drill id in its name and is deleted by the
next drill before it starts.
"""

from __future__ import annotations

import hashlib
import re
import time

from seawall.catalog.models import Manifest, utcnow
from seawall.context import Context
from seawall.drill.model import TargetResult
from seawall.errors import RefusedError, SeawallError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient, url_path
from seawall.qdrant.select import BackupSource

log = get_logger("qdrant.drill")

PREFIX = "seawall_drill_"
LEFTOVER = re.compile(r"^seawall_drill_(\d{8}t\d{6}z_[0-9a-f]{4})_.+$")


def scratch_key(drill_id: str) -> str:
    return drill_id.lower().replace("-", "_")


#: Qdrant refuses collection names over 255 characters (422), and keeps each
#: collection in a directory of that name, which the file system limits to 255
#: bytes: a scratch name must fit both.
MAX_NAME_BYTES = 255


def scratch_collection(drill_id: str, collection: str) -> str:
    """``seawall_drill_<drill id>_<collection>``, shortened when it would not fit.

    The prefix takes 36 characters, so a source name of more than ~220
    characters (or bytes) made a name Qdrant refuses, and every drill of that
    collection failed although its backup was good. A name that does not fit
    keeps as much of the source's name as fits and ends with a digest of the
    whole name (two long names with a common head stay apart); the drill id
    stays in front, so a leftover of a killed drill is still recognised.
    """
    name = f"{PREFIX}{scratch_key(drill_id)}_{collection}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(collection.encode()).hexdigest()[:16]
    head = f"{PREFIX}{scratch_key(drill_id)}_"
    room = MAX_NAME_BYTES - len(head.encode()) - len(digest) - 1
    kept = collection.encode()[:room].decode("utf-8", "ignore")
    return f"{head}{kept}_{digest}"


def is_leftover(name: str, drill_id: str) -> bool:
    m = LEFTOVER.match(name)
    return m is not None and m.group(1) < scratch_key(drill_id)


def _delete(client: QdrantClient, name: str) -> None:
    client.request(
        "DELETE",
        url_path("collections", name),
        what=f"deleting the scratch collection {name!r}",
        params={"timeout": 60},
    )


def remove_leftovers(ctx: Context, drill_id: str) -> list[str]:
    """Delete the scratch collections earlier drills left behind."""
    removed: list[str] = []
    with QdrantClient.from_settings(ctx.settings) as client:
        for name in client.collection_names():
            if is_leftover(name, drill_id):
                _delete(client, name)
                log.warning("deleted the scratch collection of an earlier drill: %s", name)
                removed.append(f"qdrant collection {name}")
    return removed


def sample_searches(
    client: QdrantClient, manifest: Manifest, collection: str
) -> tuple[int, list[str]]:
    """Search each recorded sample vector in ``collection``; (searches, problems)."""
    from seawall.qdrant.deep import manifest_tops, sample_queries
    from seawall.qdrant.sample import label, sample_found

    recorded_top = manifest_tops(manifest)
    problems: list[str] = []
    queries = sample_queries(manifest)
    for pid, vector, using in queries:
        ids = client.query(collection, vector, using, limit=3)
        top = recorded_top.get((str(pid), using))
        name = label(pid, using)
        if not sample_found(pid, ids, top):
            problems.append(f"point {name} not among the top hits of its own vector ({ids})")
        if top is not None and [str(i) for i in ids] != top:
            problems.append(f"search for point {name}: top hits {ids}, at backup time {top}")
    return len(queries), problems


def drill_collection(ctx: Context, manifest: Manifest, drill_id: str) -> TargetResult:
    """Restore the snapshot ``manifest`` into a scratch collection, check it, delete it."""
    from seawall.catalog.locks import backup_hold
    from seawall.qdrant.restore import restore

    scratch = scratch_collection(drill_id, manifest.series)
    target = TargetResult(
        "qdrant", "snapshot", manifest.series, backup_id=manifest.id, scratch=scratch
    )
    target.started_at = utcnow()
    target.recovered_to = manifest.started_at
    target.rpo_seconds = max(0.0, (target.started_at - manifest.started_at).total_seconds())
    source = BackupSource(ctx.storage, manifest, in_catalog=True)
    client = QdrantClient.from_settings(ctx.settings)
    t0 = time.monotonic()
    created = False
    try:
        if scratch in client.collection_names():
            raise RefusedError(
                f"a collection named {scratch!r} already exists and is not a leftover of an "
                "earlier drill; rename it, the drill will not touch it"
            )
        created = True
        try:
            with (
                target.step("restore") as step,
                backup_hold(
                    ctx.storage,
                    manifest.engine,
                    manifest.kind,
                    manifest.series,
                    manifest.id,
                ),
            ):
                result = restore(ctx, source, target=scratch, check=False)
                step.detail = "; ".join(result.checks)
        except SeawallError as exc:
            target.check("restore", "failed", str(exc))
            return target
        target.check("restore", "passed", "; ".join(result.checks) or "restored")
        expected = manifest.qdrant.points_count if manifest.qdrant else None
        with target.step("points count"):
            count = client.count(scratch)
        if expected is None:
            target.check("points count", "skipped", f"{count} points; none recorded at backup time")
        elif count != expected:
            target.check(
                "points count", "failed", f"{count} points, the backup recorded {expected}"
            )
        else:
            target.check("points count", "passed", f"{count} points, as recorded")
        with target.step("sample searches"):
            searched, problems = sample_searches(client, manifest, scratch)
        if problems:
            target.check("sample searches", "failed", "; ".join(problems[:5]))
        elif searched:
            target.check(
                "sample searches", "passed", f"{searched} sample searches found their points"
            )
        else:
            target.check("sample searches", "skipped", "no sample points recorded at backup time")
        if target.passed:
            target.rto_seconds = time.monotonic() - t0
    except SeawallError as exc:
        target.error = str(exc)
    finally:
        if created:
            try:
                with target.step("delete scratch collection"):
                    if scratch in client.collection_names():
                        _delete(client, scratch)
            except SeawallError as exc:
                target.error = target.error or f"could not delete {scratch!r}: {exc}"
                log.error("could not delete the scratch collection %s: %s", scratch, exc)
        client.close()
        target.finished_at = utcnow()
    return target
