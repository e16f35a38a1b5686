"""Point-in-time recovery, the configuration a restored data directory gets.

Two pieces, written by :mod:`seawall.postgres.physical.pitr` after unpacking:

- :func:`recovery_settings`: the lines appended to ``postgresql.auto.conf``
  (later lines win over the source's settings copied with the backup): the
  restore_command, the target, and overrides that keep the restored server
  from touching production: its own port and socket directory,
  ``archive_mode = off``, no replication connection. Pure.
- the restore_command wrapper script (:func:`wrapper_script` renders it,
  :func:`write_wrapper` writes it and the key files beside it): no secret on
  argv, the identity sits in a 0600 file beside the data dir; the
  environment is explicit (``env -i``) so the server's own environment
  cannot point wal-fetch elsewhere.

The wrapper turns any wal-fetch failure other than "not archived" (exit 1)
into exit 126, which PostgreSQL treats as fatal: a corrupt segment stops the
recovery loudly instead of ending it early at an older point.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Literal

from seawall.context import Context
from seawall.errors import ConfigError
from seawall.postgres.physical.pitr_plan import RestorePlan
from seawall.storage.factory import child_access

Action = Literal["promote", "pause", "shutdown"]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def repository_for_children(ctx: Context) -> str:
    """BACKUP_DIR for restore_command: a local directory with symlinks resolved, or the URL."""
    vol = ctx.storage.local_volume()
    return str(vol.root.resolve()) if vol is not None else ctx.settings.repository


def write_wrapper(ctx: Context, sidecar: Path, uid: int, gid: int) -> Path:
    """Write the key files and the restore_command script into ``sidecar``."""
    s = ctx.settings
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(sidecar),
        "BACKUP_DIR": repository_for_children(ctx),
        "PG_CLUSTER_NAME": s.pg_cluster_name,
    }
    # the mirrors too: wal-fetch reads a segment the primary lost or holds corrupt
    # from them (docs/object-storage.md), and PITR is where that matters most
    plain, secrets = child_access(s.repository)
    if s.mirrors:
        env["MIRRORS"] = ",".join(s.mirrors)
        env["MIRROR_TIMEOUT"] = f"{s.mirror_timeout:g}"
        for mirror in s.mirrors:
            more_plain, more_secrets = child_access(mirror)
            plain = {**more_plain, **plain}
            secrets = {**more_secrets, **secrets}
    env.update(plain)
    for name, value in secrets.items():  # files 0600, never in the script
        secret_file = sidecar / name.lower()
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        if os.geteuid() == 0:
            os.chown(secret_file, uid, gid)
        env[f"{name}_FILE"] = str(secret_file)
    keys = ctx.keys
    if keys.identities:
        ident = sidecar / "identity"
        ident.write_text("\n".join(keys.identities) + "\n")
        os.chmod(ident, 0o600)
        if os.geteuid() == 0:
            os.chown(ident, uid, gid)
        env["ENCRYPTION_IDENTITY_FILE"] = str(ident)
    if keys.passphrase:
        keyfile = sidecar / "passphrase"
        keyfile.write_text(keys.passphrase + "\n")
        os.chmod(keyfile, 0o600)
        if os.geteuid() == 0:
            os.chown(keyfile, uid, gid)
        env["ENCRYPTION_KEY_FILE"] = str(keyfile)
    script = sidecar / "restore_command.sh"
    script.write_text(
        wrapper_script(
            env,
            spool=sidecar / "prefetch",
            read_ahead=int(s.wal_read_ahead),
            executable=_seawall_executable(),
        )
    )
    os.chmod(script, 0o700)
    if os.geteuid() == 0:
        os.chown(script, uid, gid)
    return script


def wrapper_script(env: dict[str, str], *, spool: Path, read_ahead: int, executable: str) -> str:
    """The restore_command script: wal-fetch with exactly ``env`` (no secret in it:
    key material is named by *_FILE paths), taking a prefetched segment when one is ready."""
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (
        "#!/bin/sh\n"
        "# Written by `seawall postgres pitr-restore`: PostgreSQL's restore_command.\n"
        "# While `pitr-restore --start` waits, it decodes the next segments into\n"
        "# prefetch/ (checked against the archive's sha256 before they get their\n"
        "# name): take one from there if it is ready, else ask wal-fetch.\n"
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        f"spool={shlex.quote(str(spool))}\n"
        "# without --start, wal-fetch's own read-ahead decodes ahead (WAL_READ_AHEAD)\n"
        f"ahead={read_ahead}\n"
        'if [ -d "$spool" ]; then\n'
        "  ahead=0\n"
        '  echo "$1" > "$spool/.requested"\n'
        '  if [ -f "$spool/$1" ] && mv -f "$spool/$1" "$2" 2>/dev/null; then exit 0; fi\n'
        "fi\n"
        "# Environment is explicit (env -i) so the server's own environment cannot\n"
        "# point wal-fetch elsewhere; keys are read from files beside this script.\n"
        f"env -i {assignments} SEAWALL_WAL_READ_AHEAD=$ahead "
        f'{shlex.quote(executable)} postgres wal-fetch "$1" "$2"\n'
        "rc=$?\n"
        "# 0 = restored, 1 = not archived (normal: PostgreSQL probes ahead).\n"
        "# Anything else (corrupt file, wrong key) must stop recovery, not end it early:\n"
        "# PostgreSQL treats an exit status above 125 as fatal.\n"
        "if [ $rc -gt 1 ]; then\n"
        '  echo "seawall: wal-fetch $1 failed (exit $rc); stopping recovery" >&2\n'
        "  exit 126\n"
        "fi\n"
        "exit $rc\n"
    )


def recovery_settings(
    plan: RestorePlan,
    *,
    restore_command: str,
    port: int,
    socket_dir: Path,
    action: Action,
    timeline: int | None,
    listen_addresses: str,
    server_version_num: int,
) -> dict[str, str]:
    """The lines appended to postgresql.auto.conf (values already quoted)."""
    t = plan.target
    conf: dict[str, str] = {
        "restore_command": _quote(restore_command),
        "recovery_target_timeline": _quote(str(timeline) if timeline else "latest"),
    }
    if t.kind == "time":
        assert t.time is not None
        conf["recovery_target_time"] = _quote(t.time.strftime("%Y-%m-%d %H:%M:%S.%f+00"))
    elif t.kind == "lsn":
        conf["recovery_target_lsn"] = _quote(t.value)
    elif t.kind == "xid":
        conf["recovery_target_xid"] = _quote(t.value)
    elif t.kind == "name":
        conf["recovery_target_name"] = _quote(t.value)
    if t.kind != "latest":
        conf["recovery_target_action"] = _quote(action)
    conf.update(
        {
            "port": str(port),
            "listen_addresses": _quote(listen_addresses),
            "unix_socket_directories": _quote(str(socket_dir)),
            # the restored server must never archive into the production archive
            "archive_mode": "off",
            "archive_command": _quote(""),
            "primary_conninfo": _quote(""),
            "primary_slot_name": _quote(""),
            "logging_collector": "off",
            "hot_standby": "on",
        }
    )
    if server_version_num >= 150000:
        conf["archive_library"] = _quote("")
    return conf


def _seawall_executable() -> str:
    candidate = Path(sys.executable).parent / "seawall"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("seawall")
    if found:
        return found
    raise ConfigError("cannot find the seawall executable for restore_command; put it on PATH")
