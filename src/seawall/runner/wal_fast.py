"""The WAL hot path: ``seawall postgres wal-push PATH`` / ``wal-fetch NAME DEST``.

``archive_command`` runs once per 16 MiB segment and a slow one fills
``pg_wal`` until the database stops, so this module is reached from
:mod:`seawall.entry` without Typer, pydantic(-settings), psycopg, rich, httpx
or qdrant_client (tests/integration/wal/test_wal_fast_imports.py checks
``sys.modules``). Configuration comes from the one light reader,
:mod:`seawall.walcore.env`, which reads the same variables as settings.py
(:mod:`seawall.postgres.wal.envconfig` adds the parsed keys for the general
path).

``wal-push`` first tries :mod:`seawall.postgres.wal.fastpush` (a complete
segment into an existing archive, with nothing but the standard library's
core, zstandard's C backend and pyrage imported); anything else, including
every refusal and its message, is :func:`seawall.postgres.wal.push.push_wal`.
With ``WAL_PUSH_AHEAD`` > 0, ``wal-push`` first asks
:func:`seawall.postgres.wal.pushahead.already_pushed` whether the asynchronous
pusher (:mod:`seawall.runner.wal_pusher`, ADR 0017) already archived this very
file into this repository: then it exits 0 having imported almost nothing.
``wal-fetch`` likewise tries :mod:`seawall.postgres.wal.fastfetch` (a zstd
segment, age X25519 or plain, from the local repository) before
:func:`seawall.postgres.wal.fetch.fetch_wal`.
Run as a program (``standalone``), a successful push or fetch ends the process with
``os._exit`` once stdout/stderr are flushed: the archived file is already
durable, and tearing down the interpreter and its 16 MiB of buffers only
delays the moment PostgreSQL may archive the next segment.

Exit codes follow :mod:`seawall.errors`; one exception is deliberate:
``wal-fetch`` of a file that is not in the archive exits 1 *quietly*, since
PostgreSQL probes for files that do not exist (history files of future
timelines, the segment after the last one) as part of every recovery.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: the lean path imports nothing it can avoid
if TYPE_CHECKING:
    from seawall.postgres.wal.envconfig import WalConfig
    from seawall.postgres.wal.fastpush import Archived
    from seawall.postgres.wal.s3push import ClientPool
    from seawall.storage.base import Storage
    from seawall.storage.mirror import MirroredStorage

USAGE = (
    "usage: seawall postgres wal-push PATH\n"
    "       seawall postgres wal-fetch NAME DEST\n"
    "(archive_command = 'seawall postgres wal-push %p', "
    "restore_command = 'seawall postgres wal-fetch %f %p')\n"
)


def _err(message: str) -> None:
    sys.stderr.write(f"seawall: error: {message}\n")


def _lean_push(path: str, s3_clients: ClientPool | None = None) -> int | None:
    """0 when the lean path archived ``path``; None when push_wal must do it.
    ``s3_clients``: open connections to reuse (the asynchronous pusher's)."""
    from seawall.postgres.wal.s3push import s3_backup_dir

    mirrors: list[tuple[str, str]] = []
    if _mirror_locations():
        try:
            mirrors = _mirror_ids()
        except Exception:  # a MIRRORS entry that does not parse: the general path says so
            return None
    if s3_backup_dir() is not None:
        return _lean_push_s3(path, mirrors, s3_clients)
    from seawall.postgres.wal.fastpush import push

    try:
        archived = push(path, mirrors=mirrors)
    except OSError as exc:  # writing the archive failed: nothing complete-looking left
        from seawall.storage.base import storage_error

        err = storage_error(exc, f"{os.path.basename(path)} in the WAL archive")
        _err(f"wal-push: {err}")
        return err.exit_code
    except Exception:  # Fallback, or a surprise before anything was written
        return None
    if mirrors:
        _mirror_lean(archived, mirrors)
    return 0


def _mirror_ids() -> list[tuple[str, str]]:
    """(mirror id, location) of each MIRRORS entry, as ``open_repository`` names them."""
    from seawall.storage.location import parse_location
    from seawall.storage.mirror_layout import mirror_id

    locations = [str(parse_location(m)) for m in _mirror_locations()]
    return [(mirror_id(loc), loc) for loc in locations]


def _mirror_lean(archived: Archived, mirrors: list[tuple[str, str]]) -> None:
    """After a lean local push: copy ``archived`` to the mirrors, or record the lag.

    fastpush wrote the intent records before its commit; a record still
    there means a mirror lacks the segment, and :func:`_mirror_wal` (the
    general path's and the lean S3 push's step) copies it or leaves the
    record and the down marker. A push that found the segment archived
    (PostgreSQL retrying) copies only what an earlier push left recorded.
    """
    from seawall.storage.mirror_layout import pending_prefix

    root, key = archived.root, archived.key
    if archived.committed or any(
        os.path.isfile(f"{root}/{pending_prefix(mid)}/{key}") for mid, _ in mirrors
    ):
        _mirror_wal(root, key)


def _general_path_takes_s3() -> bool:
    """Whether push_wal/fetch_wal (the general path below) can work on an ``s3://`` repository.

    Yes: they open the repository through ``seawall.storage.factory`` (the
    boto3 backend: profiles, web identity, gzip, passphrases), so what the
    lean S3 paths hand over is archived there, under the same rules.
    """
    return True


def _lean_push_s3(
    path: str, mirrors: list[tuple[str, str]], s3_clients: ClientPool | None = None
) -> int | None:
    """:func:`_lean_push` into an ``s3://`` repository (postgres/wal/s3push.py);
    ``mirrors``: (id, location) of each MIRRORS entry, for the intent records."""
    from seawall.postgres.wal.s3push import push, s3_backup_dir
    from seawall.storage.s3.leanconf import S3Error

    try:
        key = push(path, mirrors=mirrors, clients=s3_clients)
    except S3Error as exc:  # one line naming the fix; nothing stored under a final key
        _err(f"wal-push: {exc}")
        return 2 if exc.kind == "config" else 7
    except Exception as exc:  # Fallback, or a surprise before anything was stored
        if _general_path_takes_s3():
            return None  # the general path opens the s3:// repository itself
        # the general path writes local paths only (yet): never into a folder "s3:"
        name = os.path.basename(path)
        if str(exc) == "conflict":
            _err(
                f"wal-push: {name} is already archived with different content in "
                f"{s3_backup_dir()}; refusing to add another "
                "version (`seawall postgres wal-check` lists it): investigate before removing "
                "either copy"
            )
            return 9
        if str(exc) == "raced":
            _err(
                f"wal-push: another push of {name} with different content reached "
                f"{s3_backup_dir()} at the same moment; this copy was withdrawn (two "
                "servers archive one name: give each cluster its own PG_CLUSTER_NAME)"
            )
            return 9
        _err(
            f"wal-push: {name}: the lean S3 path does not handle this case ({exc}) and the "
            "general path does not write to s3:// yet: use static AWS credentials, zstd, "
            "age recipients"
        )
        return 2
    _mirror_wal(s3_backup_dir() or "", key)  # after the primary holds it: never fails the push
    return 0


def _lean_fetch_s3(name: str, dest: str) -> int | None:
    """:func:`_lean_fetch` from an ``s3://`` repository (postgres/wal/s3fetch.py)."""
    from seawall.postgres.wal.fastfetch import Missing
    from seawall.postgres.wal.s3fetch import fetch
    from seawall.postgres.wal.s3push import s3_backup_dir
    from seawall.storage.s3.leanconf import S3Error

    try:
        fetch(name, dest)
    except Missing:
        if _mirror_locations():  # the general path looks in the mirrors too (the primary
            return None  # may have lost it: "not archived" here would end recovery early)
        if os.environ.get("SEAWALL_WAL_FETCH_VERBOSE"):
            _err(f"wal-fetch: {name} is not in the archive")
        return 1
    except S3Error as exc:  # loudly: never the quiet exit 1 that ends recovery early
        _err(f"wal-fetch: {exc}")
        return 2 if exc.kind == "config" else 7
    except Exception as exc:  # Fallback, or a surprise before dest was written
        reason = str(exc)
        if _general_path_takes_s3() and reason != "no WAL archive":
            return None  # the general path opens the s3:// repository itself
        code = (
            8
            if reason.startswith("decryption")
            else 3
            if reason.startswith(("decompression", "content does not match", "archived more"))
            else 7
            if reason == "no WAL archive"
            else 2
        )
        _err(
            f"wal-fetch: {name} from {s3_backup_dir()}: {reason}; %p not written (check "
            "BACKUP_DIR and PG_CLUSTER_NAME)"
        )
        return code
    return 0


def _lean_fetch(name: str, dest: str) -> int | None:
    """0 when the lean path restored ``name``, 1 when it is not archived, None: general path."""
    from seawall.postgres.wal.s3push import s3_backup_dir

    if s3_backup_dir() is not None:
        return _lean_fetch_s3(name, dest)
    from seawall.postgres.wal.fastfetch import Missing, fetch

    try:
        fetch(name, dest)
    except Missing:
        if _mirror_locations():  # the general path looks in the mirrors too
            return None
        if os.environ.get("SEAWALL_WAL_FETCH_VERBOSE"):
            _err(f"wal-fetch: {name} is not in the archive")
        return 1
    except Exception:  # Fallback, or a surprise before dest was written
        return None
    return 0


#: The most a wal-push (any path) waits for a mirror (MIRROR_TIMEOUT caps it lower):
#: after a failure the mirror is skipped for a minute by every process (storage/mirror.py).
WAL_MIRROR_TIMEOUT = 5.0


def _mirror_locations() -> list[str]:
    mirrors = os.environ.get("SEAWALL_MIRRORS") or os.environ.get("MIRRORS") or ""
    return [m.strip() for m in mirrors.split(",") if m.strip()]


def _mirror_storages() -> list[tuple[str, Storage]]:
    """(label, storage) of each MIRRORS entry, for wal-fetch's fall-through."""
    from seawall.storage.factory import open_storage

    return [(f"mirror {m}", open_storage(m, what="MIRRORS")) for m in _mirror_locations()]


def _mirrored(primary: str) -> MirroredStorage | None:
    """The primary wrapped with its MIRRORS (None without MIRRORS); raises when one is bad."""
    if not _mirror_locations():
        return None
    from seawall.storage.factory import open_repository
    from seawall.storage.mirror import MirroredStorage

    try:
        limit = float(
            os.environ.get("SEAWALL_MIRROR_TIMEOUT") or os.environ.get("MIRROR_TIMEOUT") or 30
        )
    except ValueError:
        limit = WAL_MIRROR_TIMEOUT
    repo = open_repository(
        primary, _mirror_locations(), mirror_timeout=min(limit, WAL_MIRROR_TIMEOUT)
    )
    return repo if isinstance(repo, MirroredStorage) else None


def _mirror_wal(primary: str, key: str, repo: MirroredStorage | None = None) -> None:
    """After the primary holds ``key`` durably: copy it to each MIRRORS repository, or record
    it for ``seawall sync``. Never fails the push (the primary decides, docs/object-storage.md)."""
    if not _mirror_locations():
        return
    try:
        if repo is None:
            repo = _mirrored(primary)
        if repo is not None:
            repo.mirror_existing(key)
    except Exception as exc:  # a bad MIRRORS or an unwritable record: say so, keep the push
        _err(f"wal-push: warning: {key} archived, but not mirrored or recorded: {exc}")


def _push_general(cfg: WalConfig, path: str) -> None:
    """The general path's push (``push_wal``) and, with MIRRORS, its mirror copies.

    The intent records are written by ``push_wal`` before its commit
    (``MirroredStorage.intend``), the copies after it; a MIRRORS that cannot
    be opened never fails the push (the primary decides): it is reported
    once the segment is archived.
    """
    from pathlib import Path

    from seawall.postgres.wal.push import push_wal

    repo: MirroredStorage | None = None
    problem: Exception | None = None
    try:
        repo = _mirrored(str(cfg.backup_dir))
    except Exception as exc:  # reported below, after the primary holds the segment
        problem = exc
    result = push_wal(cfg, Path(path), intend=repo.intend if repo is not None else None)
    if problem is not None and not result.duplicate:
        _err(f"wal-push: warning: {result.key} archived, but not mirrored or recorded: {problem}")
    elif repo is not None and not result.duplicate:
        _mirror_wal(str(cfg.backup_dir), result.key, repo)


def main(
    argv: list[str],
    *,
    standalone: bool = False,
    push_ahead: bool = True,
    s3_clients: ClientPool | None = None,
) -> int:
    """Run ``wal-push`` or ``wal-fetch``; returns the exit code.

    ``standalone``: this call is the whole process (the console script), so
    a successful ``wal-push`` may end it at once (see the module docstring).
    ``push_ahead``: with ``WAL_PUSH_AHEAD`` > 0, a wal-push first looks for the
    asynchronous pusher's marker (postgres/wal/pushahead.py, ADR 0017); the
    pusher itself calls this with False, to push exactly as the foreground does.
    ``s3_clients``: the pusher's open S3 connections, reused from segment to segment
    by the lean S3 push (postgres/wal/s3push.py, ``ClientPool``).
    """
    if not argv or argv[0] not in ("wal-push", "wal-fetch"):
        sys.stderr.write(USAGE)
        return 2
    cmd, args = argv[0], argv[1:]
    if (cmd == "wal-push" and len(args) != 1) or (cmd == "wal-fetch" and len(args) != 2):
        sys.stderr.write(USAGE)
        return 2
    held = False
    try:
        code: int | None = None
        if cmd == "wal-push" and push_ahead:
            from seawall.postgres.wal.pushahead import already_pushed
            from seawall.walcore.env import WalEnvError

            held = True  # a miss holds the segment's lock until the push below is done
            try:
                if already_pushed(args[0]):  # the pusher archived this very file here
                    code = 0
            except WalEnvError as exc:  # an invalid WAL_PUSH_AHEAD: as every command says it
                _err(str(exc))
                code = 2
        if code is None:
            code = (
                _lean_push(args[0], s3_clients)
                if cmd == "wal-push"
                else _lean_fetch(args[0], args[1])
            )
        if code is None:
            code = _general(cmd, args)
    except KeyboardInterrupt:
        _err(f"{cmd}: interrupted")
        code = 130
    finally:
        if held:
            from seawall.postgres.wal.pushahead import release_held

            release_held()
    if code == 0 and standalone:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return code


def _general(cmd: str, args: list[str]) -> int:
    """The general path: every case the lean paths hand over, with its checks and messages."""
    from pathlib import Path

    from seawall.errors import NotFoundError, SeawallError

    try:
        from seawall.postgres.wal.envconfig import load_wal_config

        cfg = load_wal_config()
        if cmd == "wal-push":
            _push_general(cfg, args[0])
            return 0
        from seawall.postgres.wal.fetch import fetch_wal
        from seawall.storage.repository import require_storage

        # loudly, not the quiet "not archived" exit 1 that ends recovery early
        require_storage(cfg.storage)
        try:
            fetch_wal(cfg, args[0], Path(args[1]), _mirror_storages())
        except NotFoundError:
            if os.environ.get("SEAWALL_WAL_FETCH_VERBOSE"):
                _err(f"wal-fetch: {args[0]} is not in the archive")
            return 1
        return 0
    except SeawallError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err(f"{cmd}: interrupted")
        return 130
    except OSError as exc:  # e.g. an archive private to another uid: exit 7, one line
        _err(
            f"{cmd}: cannot access the WAL archive: {exc.strerror or exc}"
            f"{f' ({exc.filename})' if exc.filename else ''}; check BACKUP_DIR is mounted and "
            "that seawall runs as the user owning the archive (the one PostgreSQL runs as)"
        )
        return 7
    except Exception as exc:
        _err(f"{cmd}: internal error: {type(exc).__name__}: {exc}")
        if (
            os.environ.get("SEAWALL_LOG_LEVEL") or os.environ.get("LOG_LEVEL", "")
        ).lower() == "debug":
            import traceback

            traceback.print_exc()
        return 1
