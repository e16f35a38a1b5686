"""Pin and unpin: an operator's "keep this backup", written into its manifest.

Why the manifest (docs/adr/0009-pins-in-the-manifest.md): the pin travels
with the backup (a copied directory stays pinned), every reader already
reads the manifest (retention, list, the exporter), and there is no second
file to keep consistent. The rewrite is the catalog's usual atomic replace,
done under the series lock (no backup or prune of the series runs
meanwhile) from a fresh read, so a verification result written a moment
earlier is kept. A pinned manifest carries ``format_version`` 2: a seawall
that does not know pins refuses it instead of pruning it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from seawall.catalog.locks import series_lock
from seawall.catalog.models import Manifest, Pin, utcnow
from seawall.catalog.store import manifest_key
from seawall.context import Context
from seawall.errors import ConfigError, RefusedError

MAX_NOTE = 500


def parse_until(text: str) -> datetime:
    """``--until``: a date pins through that whole day (UTC); a time is exact.

    ``2027-01-31`` keeps the backup until 2027-02-01T00:00:00Z; a date-time
    without an offset is UTC, as every time in the catalog.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1), time(), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--until {text!r} is not a date; give YYYY-MM-DD or an ISO 8601 date-time"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _rewrite(ctx: Context, m: Manifest, pin: Pin | None, command: str) -> Manifest:
    s = ctx.settings
    with series_lock(
        ctx.storage, m.engine, m.kind, m.series, timeout=s.lock_timeout, command=command
    ):
        fresh = ctx.catalog.load(manifest_key(m))
        fresh.pin = pin
        ctx.catalog.write(fresh)
    return fresh


def pin_backup(
    ctx: Context,
    m: Manifest,
    *,
    note: str | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Manifest:
    """Pin ``m`` (replacing an earlier pin's note and end); returns the new manifest."""
    now = now or utcnow()
    if not m.ok:
        raise RefusedError(
            f"backup {m.id} of {m.series} is {m.status}, not a backup to keep; "
            "pin a successful one (`seawall info` shows them)"
        )
    if until is not None and until <= now:
        raise RefusedError(
            f"--until {until.isoformat()} is in the past: the pin would keep nothing; "
            "give a later date or leave --until out to pin for good"
        )
    if note is not None and len(note) > MAX_NOTE:
        raise RefusedError(f"--note is {len(note)} characters; keep it under {MAX_NOTE}")
    note = " ".join(note.split()) if note else None  # one line in every listing
    pin = Pin(at=now, note=note or None, until=until)
    return _rewrite(ctx, m, pin, f"seawall pin {m.id}")


def unpin_backup(ctx: Context, m: Manifest) -> Manifest:
    """Remove ``m``'s pin; retention decides about it again at the next prune."""
    return _rewrite(ctx, m, None, f"seawall unpin {m.id}")
