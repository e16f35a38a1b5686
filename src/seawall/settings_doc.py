"""Generate docs/configuration.md from the Settings model (a test keeps it current)."""

from __future__ import annotations

from pydantic import AliasChoices

from seawall.settings import SECRET_FILE_VARS, Settings


def render() -> str:
    rows = [
        "# Configuration",
        "",
        "Generated from `src/seawall/settings.py` by `python -m seawall.settings_doc`;",
        "a test fails when this file is stale.",
        "",
        "Precedence: command-line options > environment > `*_FILE` secrets > the TOML",
        "file named by `SEAWALL_CONFIG` (keys are the option names in lower case) > defaults.",
        "Every option can be set with any of the names in its row; the first listed wins",
        "when several are set. Lists accept `a,b c` or JSON. Durations accept `7d`, `36h`, `90m`.",
        "Enumerated values (`COMPRESSION`, `LOG_LEVEL`, `ENGINES` …) are case-insensitive.",
        "Invalid configuration exits 2 with one line naming every bad field at once. A",
        "`SEAWALL_*` variable that is not an option below is ignored with a warning naming",
        "the closest valid name (`SEAWALL_RETENTON_DAYS` → `SEAWALL_RETENTION_DAYS`).",
        "",
        "`ENGINES` (what `seawall backup` backs up): unset means every engine whose",
        "connection is configured: `qdrant` when `QDRANT_URL`, `QDRANT_HOST`,",
        "`QDRANT_COLLECTIONS`, `QDRANT_API_KEY` or `QDRANT_PEER_URLS` is set, and `postgres`",
        "unless only Qdrant is configured (its connection defaults to localhost, as libpq's",
        "does). Set `ENGINES` to choose explicitly (`postgres`, `qdrant`; `postgresql` is",
        "accepted for `postgres`). The summary names the engines it ran and those skipped.",
        "",
        "| option | environment variables | default | secret file variables |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = (
            [c for c in alias.choices if isinstance(c, str) and c.isupper()]
            if isinstance(alias, AliasChoices)
            else []
        )
        if name in SECRET_FILE_VARS:
            default = "(secret, unset)"
        elif field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = repr(field.default)
        files = ", ".join(f"`{v}`" for v in SECRET_FILE_VARS.get(name, ()))
        env = ", ".join(f"`{n}`" for n in names)
        rows.append(f"| `{name}` | {env} | `{default}` | {files} |")
    rows += [
        "",
        "Per-series retention overrides go in the TOML file:",
        "",
        "```toml",
        "[retention_overrides.qdrant]            # every Qdrant series",
        "daily = 3",
        '[retention_overrides."postgresql/logical/audit"]',
        "yearly = -1                             # keep one per year forever",
        "```",
        "",
        "## Encryption keys",
        "",
        "`ENCRYPTION_RECIPIENTS` (age public keys, `age1…`) is what the backup side needs;",
        "the identity (`ENCRYPTION_IDENTITY` / `ENCRYPTION_IDENTITY_FILE`, the secret key)",
        "only where restores and `verify --deep` run. Without the identity, the verification",
        "right after a backup and a plain `verify` run the `stored` level (no decryption;",
        "see docs/postgres-logical.md) and say so.",
        "",
        "`ENCRYPTION_KEY` is the single key of older scripts: an `AGE-SECRET-KEY-1…` is an",
        "identity *and* (its public key) a recipient, so beside `ENCRYPTION_RECIPIENTS`",
        "backups are encrypted to all of them. Any other value is a passphrase (age's",
        "scrypt mode, ~1.5 s per file, unfit for WAL). **A passphrase `ENCRYPTION_KEY` beside",
        "`ENCRYPTION_RECIPIENTS` (or `_FILE`) with `ENCRYPTION=true` is refused** (exit 2,",
        "one line; `wal-push` too): backups would be encrypted to the recipients only and",
        "the passphrase silently ignored. Keep a passphrase `ENCRYPTION_KEY` only where old",
        "passphrase backups are restored (without `ENCRYPTION=true` it is accepted there).",
        "",
        "## Throttling",
        "",
        "`MAX_RATE` (or `--max-rate` on `postgres backup`, `postgres basebackup`, `qdrant",
        "backup` and `backup`) limits what a run writes to the repository, local volume or",
        "S3, to that many bytes per second on average (a token bucket, within 5 %; see",
        "src/seawall/storage/throttle.py): `50MiB` (or `50M`), `800KB`, plain bytes; `0`",
        "or unset means unlimited. Reads (restore, verify) and WAL archiving (`wal-push`,",
        "which must keep up with the server) are not throttled.",
        "",
    ]
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    import pathlib

    pathlib.Path("docs/configuration.md").write_text(render())
