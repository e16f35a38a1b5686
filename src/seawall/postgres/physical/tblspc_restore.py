"""Restoring a base backup's tablespaces: where each goes, and putting it there.

Each tablespace goes back to its original location unless
``--tablespace-mapping OLD=NEW`` (pg_basebackup's option) sends it
elsewhere. Every target must be new or an empty directory, checked for all
of them before anything is written: a restore on the source's own host
must never unpack over the live server's tablespace (the refusal names the
mapping to give). ``tablespace_map`` in the restored data directory is
written again with the chosen locations: PostgreSQL creates the
``pg_tblspc`` symlinks from it when recovery starts (docs/adr/0019).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from seawall.catalog.models import Artifact, Manifest, Tablespace
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import ConfigError, NotFoundError, RefusedError, StorageError
from seawall.pipeline.decode import decode_to
from seawall.postgres.tools.tar import extract_tar


def parse_mapping(items: list[str]) -> dict[str, Path]:
    """``OLD=NEW`` pairs as pg_basebackup reads them (``\\=`` is a literal ``=``)."""
    mapping: dict[str, Path] = {}
    for item in items:
        old, new, seen, cur = "", "", False, []
        i = 0
        while i < len(item):
            ch = item[i]
            if ch == "\\" and i + 1 < len(item) and item[i + 1] == "=":
                cur.append("=")
                i += 2
                continue
            if ch == "=" and not seen:
                old, cur, seen = "".join(cur), [], True
            else:
                cur.append(ch)
            i += 1
        new = "".join(cur)
        if not seen or not old or not new:
            raise ConfigError(f"--tablespace-mapping {item!r}: give OLD=NEW (two directories)")
        if not os.path.isabs(old) or not os.path.isabs(new):
            raise ConfigError(f"--tablespace-mapping {item!r}: both directories must be absolute")
        old = os.path.normpath(old)
        if old in mapping:
            raise ConfigError(f"--tablespace-mapping names {old} twice")
        mapping[old] = Path(os.path.normpath(new))
    return mapping


@dataclass
class Placement:
    """A tablespace and the directory it is restored into."""

    space: Tablespace
    target: Path
    created: bool = False  # made by us: removed again on failure


def plan_placements(base: Manifest, mapping: dict[str, Path], data_dir: Path) -> list[Placement]:
    """Where each tablespace of ``base`` goes; refuses before anything is written."""
    spaces = list((base.postgres.tablespaces if base.postgres else None) or [])
    known = {os.path.normpath(t.location) for t in spaces}
    unknown = sorted(set(mapping) - known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"--tablespace-mapping names {', '.join(unknown)}, which is no tablespace location "
            f"of base backup {base.id} (its tablespaces: {have})"
        )
    placements = [
        Placement(t, mapping.get(os.path.normpath(t.location), Path(t.location))) for t in spaces
    ]
    seen: dict[Path, str] = {}
    data = data_dir.absolute()
    for p in placements:
        target = p.target.absolute()
        for other, name in seen.items():
            if other == target or other in target.parents or target in other.parents:
                raise ConfigError(
                    f"tablespaces {name!r} and {p.space.name!r} would be restored into {other} "
                    f"and {target}, one inside the other; give each its own directory "
                    "(--tablespace-mapping)"
                )
        seen[target] = p.space.name
        if target == data or data in target.parents or target in data.parents:
            raise ConfigError(
                f"tablespace {p.space.name!r} would be restored into {target}, which overlaps "
                f"the data directory {data}; map it elsewhere (--tablespace-mapping)"
            )
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise RefusedError(
                f"tablespace {p.space.name!r} (originally {p.space.location}) would be restored "
                f"into {target}, which is not empty; pitr-restore never writes over existing "
                f"data: give --tablespace-mapping {p.space.location}=NEW_EMPTY_DIR"
            )
    return placements


def unpack_artifact(ctx: Context, base: Manifest, art: Artifact, target: Path, what: str) -> None:
    """Decode a stored tar artifact of ``base`` into ``target`` through ``tar -x``.

    The base artifact and every tablespace artifact are unpacked the same way
    (sha256 and size checked by ``decode_to``); tar's own failure is the error.
    """
    tar = extract_tar(target)
    try:
        decode_to(
            ctx.storage,
            artifact_key(base, art.name),
            tar.stdin,
            ctx.keys,
            expected_sha256=art.sha256,
            expected_size=art.stored_size,
        )
    except BrokenPipeError:
        pass  # tar stopped reading: its exit status and message say why
    finally:
        rc, err = tar.finish()
    if rc != 0:
        raise StorageError(f"unpacking {what} failed: {err.strip()[:300]}")


def unpack_tablespaces(
    ctx: Context, base: Manifest, placements: list[Placement], uid: int, gid: int
) -> None:
    """Create each target (0700, owned by the server's user) and unpack into it."""
    for p in placements:
        art = next((a for a in base.artifacts if a.name == p.space.artifact), None)
        if art is None:
            raise NotFoundError(
                f"base backup {base.id} lists tablespace {p.space.name!r} but not its artifact "
                f"{p.space.artifact}; the backup is incomplete"
            )
        if not p.target.exists():
            p.target.mkdir(parents=True)
            p.created = True
        os.chmod(p.target, 0o700)
        if os.geteuid() == 0:
            os.chown(p.target, uid, gid)
        unpack_artifact(
            ctx,
            base,
            art,
            p.target,
            f"tablespace {p.space.name!r} of base backup {base.id} into {p.target}",
        )
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(p.target):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), uid, gid)


def _escape(path: str) -> str:
    """As PostgreSQL writes tablespace_map: newline, CR and backslash escaped."""
    return "".join("\\" + c if c in "\n\r\\" else c for c in path)


def write_tablespace_map(data_dir: Path, placements: list[Placement]) -> None:
    """``tablespace_map`` with the chosen locations (PostgreSQL reads it at startup)."""
    if not placements:
        return
    lines = "".join(f"{p.space.oid} {_escape(str(p.target.absolute()))}\n" for p in placements)
    (data_dir / "tablespace_map").write_text(lines)


def remove_placements(placements: list[Placement]) -> None:
    """Undo a failed restore: remove what was unpacked (and the directories we made)."""
    for p in placements:
        if p.created:
            shutil.rmtree(p.target, ignore_errors=True)
        elif p.target.is_dir():
            for entry in p.target.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
