"""``seawall info``: every series, the WAL archive and the repository's usage."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seawall.runner.common import command, print_json, settings
from seawall.units import human_size


@command
def info(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per series the backups (sizes, tiers, pins, verification), the WAL archive's
    range and size per timeline, rejected runs, and the repository's usage.

    Read-only and lock-free: safe while backups run. The retention column is
    what `prune` would do now.
    """
    from seawall.context import Context
    from seawall.lifecycle.info import info as build

    ctx = Context(settings())
    ctx.require_repository()
    report = build(ctx)
    if json_out:
        print_json(report)
        return
    for line in render(report):
        typer.echo(line)
    for err in report["errors"]:
        typer.echo(f"seawall: warning: {err}", err=True)


def render(report: dict[str, Any]) -> list[str]:
    repo = report["repository"]
    lines = [f"repository {repo['path']}"]
    vol = repo["volume"]
    usage = (
        f", volume {human_size(vol['used_bytes'])} used of {human_size(vol['size_bytes'])} "
        f"({human_size(vol['free_bytes'])} free)"
        if vol
        else ""
    )
    lines.append(
        f"  stored {human_size(repo['stored_bytes'])} (backups {human_size(repo['backups_bytes'])}, "
        f"WAL {human_size(repo['wal_bytes'])}){usage}"
    )
    if not report["series"]:
        lines.append("  no backups")
    for s in report["series"]:
        lines.append("")
        lines.append(
            f"{s['engine']}/{s['kind']}/{s['series']}: {s['successful']} ok, {s['failed']} failed, "
            f"{s['pinned']} pinned, {human_size(s['stored_bytes'])} stored "
            f"({human_size(s['raw_bytes'])} raw)"
        )
        for b in s["backups"]:
            v = b["verification"]
            verified = (
                "-"
                if v is None
                else ("deep" if v["ok"] and v["deep"] else ("ok" if v["ok"] else "FAILED"))
            )
            keep = b["retention"]["action"] if b["retention"] else "-"
            pin = ""
            if b["pin"]:
                pin = "  pinned" if b["pinned"] else "  pin expired"
                if b["pin"].get("note"):
                    pin += f": {b['pin']['note']}"
            lines.append(
                f"  {b['id']}  {b['status']:<7}  {human_size(b['stored_bytes']):>10}  "
                f"raw {human_size(b['raw_bytes']):>10}  verified {verified:<6}  "
                f"tiers {','.join(b['tiers']) or '-':<20}  {keep}{pin}"
            )
    for w in report["wal"]:
        lines.append("")
        lines.append(f"WAL archive {w['cluster']}: {w['files']} files, {human_size(w['bytes'])}")
        win = w["recoverable_window"]
        lines.append(
            f"  recoverable window: {win['earliest']} .. {win['latest']} (LSN {win['latest_lsn']})"
            if win
            else "  nothing recoverable (no base backup with its WAL in the archive)"
        )
        for t in w["timelines"]:
            gap = f", {t['missing']} MISSING" if t["missing"] else ""
            lines.append(
                f"  timeline {t['timeline']}: {t['first']} .. {t['last']} "
                f"({t['segments']} segments, {human_size(t['bytes'])}{gap})"
            )
    if report["rejected_runs"]:
        lines.append("")
        lines.append(
            "rejected runs (target missing or unlisted, never backed up; `seawall forget --series NAME --execute` clears them):"
        )
        for r in report["rejected_runs"]:
            lines.append(f"  {r['series']} {r['id']}: {r['error']}")
    return lines
