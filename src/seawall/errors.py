"""The SeawallError tree.

Every failure a user can meet is one of these classes. Each class carries the
process exit code that the CLI returns for it, so CronJobs, scripts and
alerting can tell "the database was down" from "the backup is corrupt"
without parsing text. The class docstring is the user-facing meaning; the
message of an instance names the problem *and* the fix on one line and never
contains a secret (callers pass only names, paths and public facts).

Exit codes (also in ``seawall --help`` and docs/exit-codes.md):

==  =========================================================
0   success
1   a backup, restore or command failed (generic)
2   invalid configuration or command-line usage
3   verification failed: an artifact is corrupt or does not match its manifest
4   not found: no such backup, file, collection or WAL segment
5   source unavailable: the database or Qdrant is down, refused us, or the
    credentials are wrong
6   another run holds the lock of this series
7   storage error: the backup volume is full, read-only or unreachable
8   decryption failed: wrong or missing key
9   refused: the operation is unsafe or impossible as asked (e.g. a PITR
    target outside the recoverable window, restoring over a live database
    without ``--clean``)
10  partial: some series succeeded and some failed
11  unhealthy: ``seawall status`` or ``seawall check`` found a problem
==  =========================================================
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0


class SeawallError(Exception):
    """A command failed."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SeawallError):
    """The configuration or the command line is invalid."""

    exit_code = 2


class VerificationError(SeawallError):
    """An artifact is corrupt or does not match its manifest."""

    exit_code = 3


class NotFoundError(SeawallError):
    """The requested backup, file or object does not exist."""

    exit_code = 4


class SourceUnavailableError(SeawallError):
    """The database or Qdrant server is unreachable or refused the credentials."""

    exit_code = 5


class LockedError(SeawallError):
    """Another seawall run holds the lock of this series."""

    exit_code = 6


class StorageError(SeawallError):
    """The backup volume cannot be written or read (full, read-only, gone)."""

    exit_code = 7


class DecryptionError(SeawallError):
    """An artifact cannot be decrypted with the configured keys."""

    exit_code = 8


class RefusedError(SeawallError):
    """The operation is unsafe or impossible as requested and was not attempted."""

    exit_code = 9


class PartialFailureError(SeawallError):
    """Some series succeeded and others failed."""

    exit_code = 10


class UnhealthyError(SeawallError):
    """A health check failed: `seawall status` or `seawall check` found a problem."""

    exit_code = 11


class BackupFailedError(SeawallError):
    """A backup run failed; its failed manifest is in the catalog."""

    exit_code = 1


ALL_ERRORS: tuple[type[SeawallError], ...] = (
    SeawallError,
    ConfigError,
    VerificationError,
    NotFoundError,
    SourceUnavailableError,
    LockedError,
    StorageError,
    DecryptionError,
    RefusedError,
    PartialFailureError,
    UnhealthyError,
)


def exit_code_table() -> str:
    """Render the exit codes for ``--help`` epilogs and docs."""
    rows = ["0  success"]
    for cls in sorted(ALL_ERRORS, key=lambda c: c.exit_code):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append(f"{cls.exit_code:<2} {doc}")
    return "\n".join(rows)
