"""``seawall qdrant collections``: what the server holds, before backing it up."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seawall.runner.common import command, print_json, settings


def _vectors(config: dict[str, Any]) -> str:
    vectors = (config.get("params") or {}).get("vectors")
    if isinstance(vectors, dict) and "size" in vectors:
        return f"{vectors.get('size')}/{vectors.get('distance')}"
    if isinstance(vectors, dict):
        return ", ".join(
            f"{name}:{v.get('size')}/{v.get('distance')}"
            for name, v in sorted(vectors.items())
            if isinstance(v, dict)
        )
    return "-"


@command
def collections(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the server's collections with points count, status and vector config."""
    from seawall.context import Context
    from seawall.qdrant.backup import connect

    ctx = Context(settings())
    client, version = connect(ctx)
    rows: list[dict[str, Any]] = []
    try:
        for name in client.collection_names():
            info = client.collection_info(name)
            config = info.get("config") or {}
            rows.append(
                {
                    "name": name,
                    "status": info.get("status"),
                    "points_count": info.get("points_count"),
                    "vectors": _vectors(config),
                    "shard_number": (config.get("params") or {}).get("shard_number"),
                }
            )
    finally:
        client.close()
    if json_out:
        print_json({"server": client.display_url, "version": version, "collections": rows})
        return
    typer.echo(f"Qdrant {version} at {client.display_url}: {len(rows)} collection(s)")
    if rows:
        width = max(len(repr(r["name"])) for r in rows)
        for r in rows:
            typer.echo(
                f"  {r['name']!r:<{width}}  {r['status'] or '?':<7} "
                f"{r['points_count'] if r['points_count'] is not None else '?':>10} points  "
                f"vectors {r['vectors']}  shards {r['shard_number'] or 1}"
            )
