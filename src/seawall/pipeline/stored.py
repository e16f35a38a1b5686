"""The ``stored`` verification level: what can be proven without the decryption key.

Why this exists: the recommended setup keeps only the age *recipient*
(public key) on the backup host, so a compromised host cannot read old
backups. The verification that runs right after every backup must then work
without the identity; failing it for lack of a key (exit 8 every night, and
no retention) punished the recommended setup. Decrypt-and-restore
(``verify --deep``) runs where the identity lives.

What is checked here, per artifact, and why it is honest:

* the stored bytes are read back from the volume (the page cache of the
  file is dropped first where the OS allows it, so the bytes come from the
  disk, not from what this process just wrote) and their sha256 and size
  are compared with those computed while writing. Everything below is
  therefore about exactly the bytes that were written;
* the age header: version line, well-formed stanzas, exactly one X25519
  stanza per recipient recorded in the manifest (an X25519 stanza holds an
  ephemeral share, not the recipient's public key, so *which* keys can open
  it cannot be read back without a secret key: the count and the stanza
  types can, and the recorded recipient fingerprints are compared with the
  configured ones), a MAC line of the right length;
* the age payload's length is one age's STREAM framing can produce (64 KiB
  chunks plus 16-byte tags, no cut inside a tag, no empty last chunk after
  full ones): a file cut or padded to such a length shows even if its
  manifest was rewritten to match (a cut on a chunk boundary does not: only
  the tags, which need the key, catch that);
* the raw stream's structure as parsed while it was written
  (``Artifact.stream_check``: pg_dump's archive header and table of
  contents read to its last block, a tar read header by header to its
  end-of-archive marker).

Not checked (they need the file key, i.e. the identity): the header MAC,
the payload's authentication tags, the compressed frames inside.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from typing import Protocol

from seawall.errors import VerificationError
from seawall.pipeline.keys import KeyRing
from seawall.storage.base import Storage

_READ = 1 << 20
_HEAD = 64 * 1024 + 4096
_NONCE = 16
_TAG = 16
_CHUNK = 64 * 1024
_SEALED = _CHUNK + _TAG


# What these checks read of a manifest's artifact (``seawall.catalog.models.Artifact``),
# as protocols: the pipeline sits beside the catalog and imports neither it
# nor pydantic (import-linter, docs/design.md "Dependency direction").


class _Encryption(Protocol):
    @property
    def mode(self) -> str: ...
    @property
    def recipient_fingerprints(self) -> Sequence[str]: ...


class _StreamCheck(Protocol):
    @property
    def format(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...


class Artifact(Protocol):
    """A stored artifact as its manifest describes it."""

    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def stored_size(self) -> int: ...
    @property
    def encryption(self) -> _Encryption | None: ...
    @property
    def stream_check(self) -> _StreamCheck | None: ...


def can_decode(art: Artifact, keys: KeyRing | None) -> bool:
    """Whether ``keys`` hold what decrypting ``art`` needs (no attempt is made)."""
    enc = art.encryption
    if enc is None:
        return True
    if enc.mode == "x25519":
        return bool(keys is not None and keys.identities)
    return bool(keys is not None and keys.passphrase)


def identity_free(artifacts: Sequence[Artifact], keys: KeyRing | None) -> bool:
    """True when some artifact cannot be decrypted here: verify at the ``stored`` level."""
    return any(not can_decode(a, keys) for a in artifacts)


def missing_key_hint(artifacts: Sequence[Artifact]) -> str:
    """What to configure for the ``decoded``/``deep`` levels, for messages."""
    modes = {a.encryption.mode for a in artifacts if a.encryption is not None}
    if "x25519" in modes:
        return "ENCRYPTION_IDENTITY_FILE (the age secret key)"
    return "ENCRYPTION_KEY (the passphrase)"


def _drop_cache(fh: object) -> None:
    """Ask the kernel to forget the file's cached pages (clean after the fsync),
    so the re-read below reads the disk and not what was just written."""
    try:
        fd = fh.fileno()  # type: ignore[attr-defined]
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass


def check_stored(
    storage: Storage, key: str, art: Artifact, keys: KeyRing | None, label: str
) -> list[str]:
    """Identity-free checks of one stored artifact; raises VerificationError if one fails."""
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    with storage.open_read(key) as fh:
        _drop_cache(fh)
        while chunk := fh.read(_READ):
            digest.update(chunk)
            size += len(chunk)
            if len(head) < _HEAD:
                head += chunk[: _HEAD - len(head)]
    actual = digest.hexdigest()
    if actual != art.sha256:
        raise VerificationError(
            f"{label}: {art.name}: sha256 mismatch (manifest {art.sha256[:16]}…, file "
            f"{actual[:16]}…): the stored file is corrupt or was modified; "
            "restore from another backup"
        )
    if size != art.stored_size:
        raise VerificationError(
            f"{label}: {art.name} is {size} bytes, the manifest says {art.stored_size}: "
            "the stored file is corrupt or was modified; restore from another backup"
        )
    checks = [f"{art.name}: stored bytes re-read, sha256 and size ({size} bytes) as written"]
    if art.encryption is not None:
        checks.append(f"{art.name}: {_check_age(bytes(head), size, art, keys, label)}")
    sc = art.stream_check
    if sc is None:
        checks.append(f"{art.name}: no stream structure recorded at backup time")
    elif not sc.ok:
        raise VerificationError(
            f"{label}: {art.name} was not a well-formed {sc.format} when it was written "
            f"({sc.detail}); the backup cannot be restored, take a new one"
        )
    else:
        checks.append(f"{art.name}: {sc.format} structure checked while writing: {sc.detail}")
    return checks


def _check_age(head: bytes, size: int, art: Artifact, keys: KeyRing | None, label: str) -> str:
    from seawall.pipeline.age_scrypt import AgeFormatError, _b64decode, _read_header, parse_stanzas

    enc = art.encryption
    assert enc is not None
    src = io.BytesIO(head)
    try:
        lines, rest = _read_header(src)
        header_len = src.tell() - len(rest)
        stanzas, _, _ = parse_stanzas(lines)
        # rage/pyrage add random "*-grease" stanzas: not a recipient, ignored
        stanzas = [st for st in stanzas if not st[0][0].endswith(b"-grease")]
        types = [args[0].decode("ascii", "replace") for args, _ in stanzas]
        if enc.mode == "x25519":
            for args, body in stanzas:
                if args[0] != b"X25519" or len(args) != 2:
                    raise AgeFormatError(f"unexpected {args[0]!r} stanza in an X25519 file")
                if len(_b64decode(args[1])) != 32 or len(body) != 32:
                    raise AgeFormatError("malformed X25519 stanza")
        elif types != ["scrypt"]:
            raise AgeFormatError(f"expected one scrypt stanza, found {', '.join(types)}")
    except AgeFormatError as exc:
        raise VerificationError(
            f"{label}: {art.name}: age header is not what was written ({exc}); "
            "the artifact is corrupt"
        ) from None
    recorded = enc.recipient_fingerprints
    if enc.mode == "x25519" and recorded and len(stanzas) != len(recorded):
        raise VerificationError(
            f"{label}: {art.name}: age header has {len(stanzas)} recipient stanza(s), the "
            f"backup was encrypted to {len(recorded)}; the artifact is corrupt or was replaced"
        )
    payload = size - header_len - _NONCE
    full, last = divmod(payload, _SEALED)
    if payload < _TAG or (last != 0 and (last < _TAG or (last == _TAG and full > 0))):
        raise VerificationError(
            f"{label}: {art.name}: age payload of {payload} bytes is not a whole number of "
            "sealed chunks (cut short or padded); the artifact is corrupt"
        )
    chunks = full + (1 if last else 0)
    if enc.mode == "scrypt":
        return f"age header: one scrypt stanza; payload framing ok ({chunks} chunks)"
    note = ""
    configured = keys.fingerprints() if keys is not None else []
    if recorded and configured:
        if sorted(recorded) == sorted(configured):
            note = ", the configured ENCRYPTION_RECIPIENTS"
        else:
            note = (
                ", recorded recipients differ from the configured ones (a backup "
                "from before a key rotation?)"
            )
    return (
        f"age header: {len(stanzas)} X25519 stanza(s) for {len(recorded) or '?'} recorded "
        f"recipient(s){note}; payload framing ok ({chunks} chunks); header MAC and payload "
        "tags need the identity (verify --deep)"
    )
