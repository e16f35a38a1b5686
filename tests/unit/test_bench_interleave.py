"""bench: tools take turns (A B C, A B C, ...) and one tool's failure
leaves the others' numbers intact. Real processes via bench.measure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench import measure
from bench.suites.common import Tool, interleaved_rows


def _appender(
    log: Path, name: str, fail_on: int | None = None
) -> Callable[[int], measure.RunResult]:
    def attempt(i: int) -> measure.RunResult:
        code = 1 if fail_on == i else 0
        return measure.run([["sh", "-c", f"echo {name} >> {log}; exit {code}"]], timeout=30)

    return attempt


def test_rounds_alternate_between_tools(tmp_path: Path) -> None:
    log = tmp_path / "order"
    rows = interleaved_rows("t", [Tool(n, _appender(log, n)) for n in ("a", "b", "c")], repeat=3)
    assert log.read_text().split() == ["a", "b", "c"] * 3
    assert [r.tool for r in rows] == ["a", "b", "c"]
    assert all(len(r.samples) == 3 and r.median_s is not None for r in rows)


def test_a_failing_tool_drops_out_and_the_others_go_on(tmp_path: Path) -> None:
    log = tmp_path / "order"
    rows = interleaved_rows(
        "t",
        [
            Tool("never", _appender(log, "never", fail_on=0)),
            Tool("late", _appender(log, "late", fail_on=1)),
            Tool("ok", _appender(log, "ok")),
            Tool("absent", _appender(log, "absent"), unavailable="not installed"),
        ],
        repeat=3,
    )
    assert log.read_text().split() == ["never", "late", "ok", "late", "ok", "ok"]
    never, late, ok, absent = rows
    assert never.median_s is None and never.notes.startswith("not available")
    assert len(late.samples) == 1 and "failed on run 2" in late.notes
    assert len(ok.samples) == 3
    assert absent.median_s is None and absent.notes == "not installed"
