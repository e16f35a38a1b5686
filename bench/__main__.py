"""``python -m bench [suite ...] [--size-mb N] [--repeat K] [--json out.json]``.

Runs the chosen suites against one throwaway cluster and prints one table.
A suite that blows up is reported as a row and the others still run; every
temp dir and process is cleaned up on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from bench.context import Context, Options
from bench.report import Row, environment, text_table, write_json, write_markdown

SUITES = ["logical", "wal", "basebackup", "pitr", "prune", "exporter", "qdrant", "s3", "wals3"]


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "suites",
        nargs="*",
        default=["all"],
        choices=[*SUITES, "all"],
        help="suites to run (default: all)",
    )
    p.add_argument("--size-mb", type=int, default=1024, help="database size (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    p.add_argument("--json", type=Path, help="write results as JSON")
    p.add_argument("--markdown", type=Path, help="write results as a markdown table")
    p.add_argument(
        "--sustained-seconds",
        type=float,
        default=60.0,
        help="pgbench duration of the sustained WAL archiving test",
    )
    p.add_argument("--wal-segments", type=int, default=20)
    p.add_argument("--catalog-backups", type=int, default=10_000)
    p.add_argument("--catalog-wal", type=int, default=100_000)
    p.add_argument(
        "--vectors",
        type=int,
        default=50_000,
        help="float32 vectors (x384) for the qdrant compression test",
    )
    p.add_argument(
        "--qdrant-snapshot-mb",
        type=int,
        default=2048,
        help="size of the snapshot served for the download test",
    )
    p.add_argument(
        "--pitr-scale", type=int, default=50, help="pgbench scale of the pitr suite's cluster"
    )
    p.add_argument(
        "--pitr-wal-mb",
        type=int,
        default=1024,
        help="MiB of WAL the pitr suite writes after its base backups",
    )
    p.add_argument("--s3-mb", type=int, default=2048, help="size of the file the s3 suite uploads")
    p.add_argument(
        "--s3-parts",
        default="upload,backup,restore,import",
        help="groups of the s3 suite to run (comma-separated)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="regenerate the data instead of copying the cached cluster",
    )
    return p.parse_args(argv)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    chosen = (
        SUITES
        if "all" in args.suites or not args.suites
        else [s for s in SUITES if s in args.suites]
    )
    opts = Options(
        size_mb=args.size_mb,
        repeat=max(1, args.repeat),
        sustained_s=args.sustained_seconds,
        wal_segments=args.wal_segments,
        catalog_backups=args.catalog_backups,
        catalog_wal=args.catalog_wal,
        vectors=args.vectors,
        qdrant_snapshot_mb=args.qdrant_snapshot_mb,
        no_cache=args.no_cache,
    )
    signal.signal(signal.SIGTERM, _sigterm)
    # also when started in the background with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx = Context(opts)
    ctx.shared["pitr_scale"] = args.pitr_scale
    ctx.shared["pitr_wal_mb"] = args.pitr_wal_mb
    ctx.shared["s3_mb"] = args.s3_mb
    ctx.shared["s3_parts"] = args.s3_parts
    rows: list[Row] = []
    meta = environment() | {"size_mb": opts.size_mb, "repeat": opts.repeat, "suites": chosen}
    t0 = time.monotonic()
    try:
        for name in chosen:
            ctx.log(f"=== suite {name}")
            started = time.monotonic()
            try:
                module = importlib.import_module(f"bench.suites.{name}")
                suite_rows: list[Row] = module.run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                suite_rows = [Row(suite=name, tool="(suite)", notes=f"suite failed: {exc!r}"[:200])]
            rows.extend(suite_rows)
            ctx.log(f"=== suite {name} done in {time.monotonic() - started:.0f}s")
            print(text_table(suite_rows), flush=True)
    except KeyboardInterrupt:
        ctx.log("interrupted: cleaning up")
        return 130
    finally:
        ctx.close()
    meta["total_s"] = round(time.monotonic() - t0, 1)
    print()
    print(text_table(rows))
    if args.json:
        write_json(args.json, rows, meta)
    if args.markdown:
        write_markdown(args.markdown, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
