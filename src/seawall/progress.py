"""Progress of long streams: a bar on stderr when it is a TTY, periodic log lines otherwise.

Engines take a plain ``Callable[[int], None]`` (bytes just processed) so they
stay independent of how progress is shown. A use case that can only guess
the total (pg_dump's output size is unknown until the end; the database's
size on disk is a fair guess) calls the callback's optional ``estimate(n)``
attribute, found with ``getattr``: the bar then shows a total and says it is
an estimate.

Where things go, and why:

* the bar is drawn on **stderr**, never stdout, and only when stderr is a
  terminal: stdout carries results (``--json``), and a CronJob's stderr is
  a log file that must not fill with bar frames (JSON log lines instead,
  every 10 s);
* log records emitted while the bar is live are printed *above* it, each on
  its own line: the log handler writes to whatever ``sys.stderr`` is at that
  moment (:class:`seawall.log.CurrentStderrHandler`), which rich's live
  display has replaced with a proxy that moves the bar down. Before, the
  handler held the real stderr and its lines landed on the bar's line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from seawall.log import get_logger
from seawall.units import human_size

Progress = Callable[[int], None]


class _Tick:
    """The byte-count callback of a live bar, with ``estimate(total)``."""

    def __init__(self, advance: Callable[[int], None], estimate: Callable[[int], None]) -> None:
        self._advance = advance
        self.estimate = estimate

    def __call__(self, n: int) -> None:
        self._advance(n)


@contextmanager
def progress(label: str, *, total: int | None = None, quiet: bool = False) -> Iterator[Progress]:
    """Yield a byte-count callback; a bar on a TTY stderr, else a log line every 10 s."""
    if quiet:
        yield lambda n: None
        return
    if sys.stderr.isatty():
        from rich.console import Console
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
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            redirect_stderr=True,
            redirect_stdout=False,
        ) as bar:
            task = bar.add_task(label, total=total)

            def estimate(n: int) -> None:
                description = f"{label} (of ~{human_size(n)}, an estimate)"
                bar.update(task, total=max(n, 1), description=description)

            yield _Tick(lambda n: bar.advance(task, n), estimate)
        return
    log = get_logger("progress")
    state = {"bytes": 0, "last": time.monotonic(), "start": time.monotonic(), "estimate": 0}

    def tick(n: int) -> None:
        state["bytes"] += n
        now = time.monotonic()
        if now - state["last"] >= 10:
            state["last"] = now
            rate = state["bytes"] / max(now - state["start"], 1e-6)
            extra = {"task": label, "bytes": int(state["bytes"]), "rate_bps": int(rate)}
            if total is not None:
                extra["total_bytes"] = total
            elif state["estimate"]:
                extra["estimated_total_bytes"] = int(state["estimate"])
            log.info("progress", extra=extra)

    def set_estimate(n: int) -> None:
        state["estimate"] = n

    yield _Tick(tick, set_estimate)
