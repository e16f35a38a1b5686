"""Progress of long streams: a bar on a TTY, periodic log lines otherwise.

Engines take a plain ``Callable[[int], None]`` (bytes just processed) so they
stay independent of how progress is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from seawall.log import get_logger

Progress = Callable[[int], None]


@contextmanager
def progress(label: str, *, total: int | None = None, quiet: bool = False) -> Iterator[Progress]:
    """Yield a byte-count callback; shows a bar on a TTY, else logs every 10 s."""
    if quiet:
        yield lambda n: None
        return
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress as RichProgress,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        with RichProgress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)
        return
    log = get_logger("progress")
    state = {"bytes": 0, "last": time.monotonic(), "start": time.monotonic()}

    def tick(n: int) -> None:
        state["bytes"] += n
        now = time.monotonic()
        if now - state["last"] >= 10:
            state["last"] = now
            rate = state["bytes"] / max(now - state["start"], 1e-6)
            log.info(
                "progress",
                extra={"task": label, "bytes": int(state["bytes"]), "rate_bps": int(rate)},
            )

    yield tick
