"""The snapshot's tar structure, checked while it streams into the catalog.

Why: the verification right after a backup must work on a host that holds
only the age recipient (no identity, nothing can be decrypted there). What
the download already proves (sha256 equal to the checksum Qdrant reported)
is joined by what this scanner sees on the same pass: every tar header
checksum and size field to the end-of-archive marker. The verdict goes into
``Artifact.stream_check``; :mod:`seawall.pipeline.stored` reports it. The
nested segment tars are not opened here (the decoded level does that, and
``--deep`` loads them).
"""

from __future__ import annotations

from seawall.catalog.models import StreamCheck
from seawall.pipeline.tarscan import TarScanner, TarStructureError


class SnapshotStructure:
    """A pipeline tap: feed raw snapshot bytes; never raises (a bad archive is
    a verdict recorded for verification, not a reason to abort the download)."""

    def __init__(self) -> None:
        self.scanner = TarScanner(wanted=())
        self.error: str | None = None

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            self.scanner.feed(data)
        except TarStructureError as exc:
            self.error = str(exc)

    def result(self, checksum_matched: bool) -> StreamCheck:
        if self.error is None:
            try:
                self.scanner.finish()
            except TarStructureError as exc:
                self.error = str(exc)
        if self.error is not None:
            return StreamCheck(format="tar", ok=False, detail=self.error)
        return StreamCheck(
            format="tar",
            ok=True,
            detail=f"{self.scanner.members} members read header by header (checksums ok) to "
            "the end-of-archive marker"
            + (
                "; the snapshot's sha256 matched the checksum Qdrant reported"
                if checksum_matched
                else "; Qdrant reported no checksum to compare with"
            ),
        )
