"""Command lines of the peers seawall is compared with.

Each function returns the stages of a pipeline (``list[list[str]]``); the
suites run them through ``bench.measure.run``. The peers are the best a
careful operator would type by hand, with the same settings seawall uses
(zstd level 3 on all cores, age X25519), so "within 10%" means "costs
nothing over the command line".
"""

from __future__ import annotations

from pathlib import Path

from bench.cluster import pg_bin

Stages = list[list[str]]

ZSTD = ["zstd", "-3", "-T0", "-q", "-c"]


def age_encrypt(recipient: str) -> list[str]:
    return ["age", "-r", recipient]


# --- logical ---------------------------------------------------------------


def pg_dump_gzip(db: str) -> Stages:
    """What the operators' old script does: plain SQL, gzip default level."""
    return [[pg_bin("pg_dump"), "-d", db], ["gzip", "-c"]]


def pg_dump_custom_raw(db: str) -> Stages:
    """The floor: pg_dump alone, custom format, no compression."""
    return [[pg_bin("pg_dump"), "-Fc", "-Z0", "-d", db]]


def pg_dump_zstd_age(db: str, recipient: str, level: int = 3) -> Stages:
    """The C-tool equivalent of seawall's logical backup."""
    zstd = ["zstd", f"-{level}", "-T0", "-q", "-c"]
    return [[pg_bin("pg_dump"), "-Fc", "-Z0", "-d", db], zstd, age_encrypt(recipient)]


def gunzip_psql(db: str) -> Stages:
    """Restore of the plain dump (stdin is the .sql.gz file)."""
    return [["gzip", "-dc"], [pg_bin("psql"), "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", db]]


# --- physical --------------------------------------------------------------


def basebackup_raw(target: Path) -> Stages:
    return [[pg_bin("pg_basebackup"), "-D", str(target), "-Ft", "-c", "fast"]]


def basebackup_zstd_age(recipient: str) -> Stages:
    return [
        [pg_bin("pg_basebackup"), "-D", "-", "-Ft", "-X", "none", "-c", "fast"],
        ZSTD,
        age_encrypt(recipient),
    ]


def segment_zstd_age(segment: Path, recipient: str) -> Stages:
    """The floor for one WAL segment: compress and encrypt, nothing else."""
    return [[*ZSTD, str(segment)], age_encrypt(recipient)]


# --- pgBackRest ------------------------------------------------------------


def pgbackrest_conf(
    path: Path,
    *,
    repo: Path,
    work: Path,
    datadir: Path,
    port: int,
    socket_dir: Path,
    cipher_pass: str | None = None,
    process_max: int = 2,
) -> Path:
    """Write a pgbackrest.conf for stanza ``bench`` and return its path."""
    cipher = (
        f"repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={cipher_pass}\n" if cipher_pass else ""
    )
    path.write_text(
        f"""[global]
repo1-path={repo}
{cipher}compress-type=zst
compress-level=3
process-max={process_max}
start-fast=y
archive-check=n
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path={work}/lock
spool-path={work}/spool

[bench]
pg1-path={datadir}
pg1-port={port}
pg1-socket-path={socket_dir}
pg1-user=postgres
"""
    )
    return path


def pgbackrest(conf: Path, *args: str) -> list[str]:
    return ["pgbackrest", f"--config={conf}", "--stanza=bench", *args]
