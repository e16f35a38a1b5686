"""``seawall check``: prove the setup works end to end, like ``pgbackrest check``.

Why every check acts for real instead of reading configuration: a setting
can look right and still fail (the archiver runs with another environment,
the volume went read-only, a recipient was pasted with a typo). So check
connects to the database, forces a WAL switch and waits for *that* segment
to land in *this* repository, writes and deletes a probe object, and
encrypts (and, with an identity, decrypts) a probe. One line per check; any
failure makes the command exit 11 (docs/status-and-check.md).

It writes nothing but a tiny WAL record (``pg_logical_emit_message``, not
transactional, no table touched) and its own probe objects, which it deletes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from seawall.catalog.wal_layout import existing_versions, wal_prefix
from seawall.context import Context
from seawall.errors import SeawallError
from seawall.health.archive_command import parse, same_dir
from seawall.walcore.archived import parse_wal_key

Outcome = Literal["ok", "warn", "FAIL", "skip"]
PROBE_PREFIX = "check"  # <BACKUP_DIR>/check/probe-<random>: never a backup path


@dataclass(frozen=True)
class CheckLine:
    name: str
    outcome: Outcome
    message: str

    def line(self) -> str:
        return f"{self.outcome:<4}  {self.name}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "outcome": self.outcome, "message": self.message}


@dataclass
class CheckReport:
    lines: list[CheckLine] = field(default_factory=list)
    #: sees each line as soon as it is known (a slow WAL switch should not hide the rest)
    on_line: Callable[[CheckLine], None] | None = None

    def add(self, name: str, outcome: Outcome, message: str) -> CheckLine:
        item = CheckLine(name, outcome, message)
        self.lines.append(item)
        if self.on_line is not None:
            self.on_line(item)
        return item

    @property
    def failed(self) -> list[CheckLine]:
        return [c for c in self.lines if c.outcome == "FAIL"]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.failed, "checks": [c.to_dict() for c in self.lines]}


Conn = Any  # psycopg.Connection; kept loose so this module imports psycopg lazily


def _one(conn: Conn, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _archive_settings(ctx: Context, conn: Conn, report: CheckReport) -> bool:
    """archive_mode and archive_command; True when a WAL switch is worth trying."""
    mode = str(_one(conn, "SHOW archive_mode"))
    in_recovery = bool(_one(conn, "SELECT pg_is_in_recovery()"))
    if mode not in ("on", "always"):
        report.add(
            "archive_mode",
            "FAIL",
            f"archive_mode is {mode!r}: no WAL is archived, point-in-time recovery is "
            "impossible; set archive_mode = on in postgresql.conf and restart PostgreSQL",
        )
        return False
    report.add("archive_mode", "ok", mode)
    library = ""
    if int(_one(conn, "SHOW server_version_num")) >= 150000:
        library = str(_one(conn, "SHOW archive_library") or "")
    text = str(_one(conn, "SHOW archive_command") or "")
    s = ctx.settings
    fix = (
        "set archive_command = 'seawall postgres wal-push %p' with this BACKUP_DIR and "
        "PG_CLUSTER_NAME in its environment (docs/wal-archiving.md), then SELECT pg_reload_conf()"
    )
    if library:
        report.add(
            "archive_command",
            "FAIL",
            f"archive_library {library!r} is set, so archive_command is ignored; "
            f"clear archive_library and {fix}",
        )
        return False
    cmd = parse(text)
    where = f"archive_command {text!r}"
    if not text.strip() or not cmd.mentions_seawall:
        report.add("archive_command", "FAIL", f"{where} does not call seawall wal-push; {fix}")
        return False
    if not cmd.has_placeholder:
        report.add("archive_command", "FAIL", f"{where} does not pass %p (the file); {fix}")
        return False
    if cmd.backup_dir is not None and not same_dir(cmd.backup_dir, s.repository):
        report.add(
            "archive_command",
            "FAIL",
            f"{where} pushes to BACKUP_DIR {cmd.backup_dir}, but this seawall's repository is "
            f"{s.repository}: WAL lands where restores will not look; {fix}",
        )
        return not in_recovery
    if cmd.cluster is not None and cmd.cluster != s.pg_cluster_name:
        report.add(
            "archive_command",
            "FAIL",
            f"{where} archives as PG_CLUSTER_NAME {cmd.cluster!r}, but this seawall uses "
            f"{s.pg_cluster_name!r}; {fix}",
        )
        return not in_recovery
    if cmd.calls_seawall and cmd.backup_dir is not None:
        report.add("archive_command", "ok", f"calls seawall wal-push into {cmd.backup_dir}")
    elif cmd.calls_seawall:
        report.add(
            "archive_command",
            "ok",
            "calls seawall wal-push; its BACKUP_DIR comes from the server's environment "
            "(the WAL switch below proves where it lands)",
        )
    else:
        report.add(
            "archive_command",
            "warn",
            f"{where} looks like a wrapper script; the WAL switch below proves where it lands",
        )
    return True


def _emit_and_switch(conn: Conn) -> str:
    """Write a tiny WAL record, switch, and return the finished segment's name.

    pg_switch_wal() does nothing when no WAL was written since the last
    switch, so a record is written first: a non-transactional logical
    message (no table touched); where the role may not call it, a
    transaction id (its commit record is WAL too).
    """
    try:
        conn.execute("SELECT pg_logical_emit_message(false, 'seawall-check', 'probe')")
    except Exception:
        conn.rollback()
        conn.execute("SELECT txid_current()")
    return str(_one(conn, "SELECT pg_walfile_name(pg_switch_wal())"))


def _archiver(conn: Conn) -> tuple[str, str, int]:
    row = conn.execute(
        "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), failed_count "
        "FROM pg_stat_archiver"
    ).fetchone()
    return str(row[0]), str(row[1]), int(row[2])


def _wal_switch(ctx: Context, conn: Conn, report: CheckReport, timeout: float) -> None:
    if bool(_one(conn, "SELECT pg_is_in_recovery()")):
        report.add("wal switch", "skip", "the server is a standby; run check on the primary")
        return
    cluster = ctx.settings.pg_cluster_name
    where = f"{ctx.storage.describe()}/{wal_prefix(cluster)}"
    failures_before = _archiver(conn)[2]
    started = time.monotonic()
    segment = _emit_and_switch(conn)
    deadline = started + timeout
    while True:
        found = existing_versions(ctx.storage, cluster, segment)
        if found:
            took = time.monotonic() - started
            report.add(
                "wal switch", "ok", f"segment {segment} archived into {where} in {took:.1f}s"
            )
            _wal_readable(ctx, report, segment, found[0])
            return
        archived, failed, failures = _archiver(conn)
        if archived and len(archived) == len(segment) and archived >= segment:
            # PostgreSQL counts it archived, yet it is not here: archived elsewhere
            if not existing_versions(ctx.storage, cluster, segment):
                report.add(
                    "wal switch",
                    "FAIL",
                    f"PostgreSQL archived segment {segment}, but it is not in {where}: "
                    "archive_command stores WAL somewhere else; point it at this BACKUP_DIR "
                    "and PG_CLUSTER_NAME",
                )
                return
            continue
        if failed == segment and failures > failures_before:
            report.add(
                "wal switch",
                "FAIL",
                f"archive_command failed for segment {segment} (pg_stat_archiver.failed_count "
                f"{failures}); the server log has its error; fix it, then run check again",
            )
            return
        if time.monotonic() > deadline:
            report.add(
                "wal switch",
                "FAIL",
                f"segment {segment} did not reach {where} within {timeout:.0f}s (last archived: "
                f"{archived or 'none'}); check archive_command and the server log, or raise "
                "--timeout on a busy server",
            )
            return
        time.sleep(0.2)


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def _wal_readable(ctx: Context, report: CheckReport, segment: str, key: str) -> None:
    """The segment just archived decodes with *this* configuration, as wal-fetch will.

    The archiver runs with its own environment: WAL encrypted to recipients
    whose identity the restore side does not have (or stored in clear while
    ENCRYPTION is on here) looks fine until the day of the restore.
    """
    from seawall.pipeline.decode import decode_to

    obj = parse_wal_key(key)
    if obj is None:  # existing_versions only returns archive names
        return
    name = "wal readable"
    if ctx.settings.encryption and not obj.encrypted:
        report.add(
            name,
            "FAIL",
            f"segment {segment} was stored unencrypted although ENCRYPTION is on here: "
            "archive_command's environment lacks ENCRYPTION=true and ENCRYPTION_RECIPIENTS",
        )
        return
    try:
        keys = ctx.keys
    except SeawallError:
        report.add(name, "skip", "the keys do not parse (see encryption below)")
        return
    if obj.encrypted and not (keys.identities or keys.passphrase):
        report.add(
            name,
            "ok",
            f"segment {segment} is stored encrypted; no identity here to prove it decrypts",
        )
        return
    sink = _HashSink()
    try:
        decode_to(ctx.storage, key, sink, keys, compression=obj.compression)
    except SeawallError as exc:
        report.add(
            name,
            "FAIL",
            f"segment {segment} cannot be decoded with this configuration ({exc}); wal-fetch "
            "would stop a restore here: archive_command must encrypt to the recipients whose "
            "identity restores have",
        )
        return
    if not sink.hash.hexdigest().startswith(obj.sha256_prefix):
        report.add(name, "FAIL", f"segment {segment} decodes to other bytes than it was pushed as")
        return
    report.add(name, "ok", f"segment {segment} decodes with this configuration (sha256 matches)")


def _database(ctx: Context, report: CheckReport, timeout: float) -> None:
    from seawall.postgres.logical.server import connect, server_version
    from seawall.postgres.tools.base import ConnParams

    params = ConnParams.from_settings(ctx.settings)
    try:
        conn = connect(params)
    except SeawallError as exc:
        report.add("database", "FAIL", str(exc))
        return
    try:
        role = "standby" if _one(conn, "SELECT pg_is_in_recovery()") else "primary"
        report.add(
            "database",
            "ok",
            f"connected to {params.describe()} (PostgreSQL {server_version(conn)}, {role})",
        )
        try:
            switch = _archive_settings(ctx, conn, report)
        except Exception as exc:  # e.g. a role without pg_read_all_settings
            conn.rollback()
            report.add(
                "archive_command",
                "FAIL",
                f"cannot read the archive settings ({str(exc).splitlines()[0]}); "
                "connect as a superuser or a role with pg_read_all_settings",
            )
            return
        if switch:
            try:
                _wal_switch(ctx, conn, report, timeout)
            except Exception as exc:
                report.add(
                    "wal switch",
                    "FAIL",
                    f"cannot force a WAL switch ({str(exc).splitlines()[0]}); connect as a "
                    "superuser or GRANT EXECUTE ON FUNCTION pg_switch_wal() to this role",
                )
        else:
            report.add("wal switch", "skip", "archiving is not set up (see above)")
    finally:
        conn.close()


def _probe(ctx: Context, report: CheckReport) -> bool:
    """Write, read back and delete a probe object; True when that worked."""
    storage = ctx.storage
    key = f"{PROBE_PREFIX}/probe-{secrets.token_hex(8)}"
    data = secrets.token_bytes(64)
    try:
        storage.write_bytes(key, data)
        back = storage.read_bytes(key)
        storage.delete(key)
    except SeawallError as exc:
        report.add("repository", "FAIL", f"{storage.describe()}: {exc}")
        return False
    except OSError as exc:
        report.add(
            "repository",
            "FAIL",
            f"cannot write a probe into {storage.describe()} ({exc.strerror}); "
            "make BACKUP_DIR writable by this user",
        )
        return False
    if back != data:
        report.add("repository", "FAIL", f"a probe read back from {storage.describe()} differs")
        return False
    report.add("repository", "ok", f"wrote, read back and deleted a probe in {storage.describe()}")
    return True


class _Sink:
    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buf.write(data)


def _encryption(ctx: Context, report: CheckReport, repository_ok: bool) -> None:
    from seawall.pipeline.decode import decode_to
    from seawall.pipeline.store import store_stream

    s = ctx.settings
    try:
        keys = ctx.keys  # parses every recipient and identity
    except SeawallError as exc:
        report.add("encryption", "FAIL", str(exc))
        return
    if not s.encryption:
        report.add("encryption", "ok", "off (ENCRYPTION=false): backups are stored unencrypted")
        return
    if not keys.can_encrypt:
        report.add("encryption", "FAIL", "ENCRYPTION is on but no recipient or key is configured")
        return
    if not repository_ok:
        report.add("encryption", "skip", "needs a writable repository for its probe")
        return
    key = f"{PROBE_PREFIX}/probe-{secrets.token_hex(8)}{ctx.spec.suffix()}"
    data = secrets.token_bytes(256)
    try:
        store_stream(io.BytesIO(data), ctx.storage, key, ctx.spec)
        what = f"encrypted a probe to {len(keys.recipients) or 'the passphrase'}"
        if len(keys.recipients):
            what += " recipient(s)"
        if not (keys.identities or keys.passphrase):
            report.add(
                "encryption",
                "ok",
                f"{what}; no identity here, so decryption is not checked "
                "(run check where restores run to test ENCRYPTION_IDENTITY)",
            )
            return
        sink = _Sink()
        try:
            decode_to(ctx.storage, key, sink, keys)
        except SeawallError as exc:
            report.add(
                "encryption",
                "FAIL",
                f"{what}, but the configured identity cannot decrypt it ({exc}); "
                "ENCRYPTION_IDENTITY must be the secret key of one of ENCRYPTION_RECIPIENTS",
            )
            return
        if sink.buf.getvalue() != data:
            report.add("encryption", "FAIL", f"{what}, but it decrypted to different bytes")
            return
        report.add("encryption", "ok", f"{what} and decrypted it with the configured identity")
    except SeawallError as exc:
        report.add("encryption", "FAIL", str(exc))
    finally:
        with contextlib.suppress(Exception):
            ctx.storage.delete(key)


def run_checks(
    ctx: Context, timeout: float, on_line: Callable[[CheckLine], None] | None = None
) -> CheckReport:
    """Every check, in order; ``on_line`` sees each line as soon as it is known."""
    report = CheckReport(on_line=on_line)
    _database(ctx, report, timeout)
    repo_ok = _probe(ctx, report)
    _encryption(ctx, report, repo_ok)
    return report
