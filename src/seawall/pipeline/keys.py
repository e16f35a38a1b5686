"""Encryption keys, kept away from argv, logs and manifests.

seawall writes the age format so that nobody needs seawall to read their own
backups (``age -d -i key.txt``). Recommended: X25519 *recipients* (public
keys) on the backup side, so a compromised backup host cannot read old
backups, and the *identity* (secret key) only where restores run. Several
identities may be configured so backups made under an old key still restore
after a rotation. ``ENCRYPTION_KEY`` from the operators' old scripts is
honoured: an ``AGE-SECRET-KEY-1…`` is an identity (and its recipient); any
other value is a passphrase for age's scrypt mode (about 1.5 s per file at
the default work factor, so unfit for WAL).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from seawall.errors import ConfigError
from seawall.pipeline.age_x25519 import RecipientError, parse_recipient

SECRET_PREFIX = "AGE-SECRET-KEY-1"
PUBLIC_PREFIX = "age1"


def fingerprint(recipient: str) -> str:
    """Short stable id of a public key, safe to put in manifests and logs."""
    return "sha256:" + hashlib.sha256(recipient.strip().encode()).hexdigest()[:16]


def parse_identities(text: str) -> list[str]:
    """Identity lines from an age identity file (comments and blanks skipped)."""
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith(SECRET_PREFIX):
            raise ConfigError(
                "ENCRYPTION_IDENTITY: expected age secret keys (AGE-SECRET-KEY-1...), "
                "one per line; generate one with `seawall keygen`"
            )
        keys.append(line)
    return keys


def parse_recipients(text: str) -> list[str]:
    recipients = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(PUBLIC_PREFIX):
            raise ConfigError(
                f"ENCRYPTION_RECIPIENTS: {line[:20]!r}... is not an age public key "
                "(age1...); `seawall keygen` prints one"
            )
        try:
            parse_recipient(line)
        except RecipientError as exc:
            raise ConfigError(
                f"ENCRYPTION_RECIPIENTS: {line[:20]!r}... is not a valid age public key "
                f"({exc}); `seawall keygen` prints one"
            ) from None
        recipients.append(line)
    return recipients


#: One line for the refused combination (settings and the WAL commands' own reader).
AMBIGUOUS_KEYS = (
    "ENCRYPTION_KEY is a passphrase and ENCRYPTION_RECIPIENTS is set too: backups would be "
    "encrypted to the recipients only and the passphrase silently ignored; unset one of them "
    "(keep a passphrase ENCRYPTION_KEY only where old passphrase backups are restored)"
)


def is_ambiguous(encryption: bool, key: str | None, has_recipients: bool) -> bool:
    """A passphrase ``ENCRYPTION_KEY`` beside recipients while encrypting: refused.

    Which one would be used is not obvious (the recipients: X25519 wins), and
    an operator who set the passphrase believes it protects the backups. An
    ``AGE-SECRET-KEY-1…`` key is not ambiguous: it is an identity whose public
    key is added to the recipients (documented), so both can decrypt.
    """
    if not (encryption and key and has_recipients):
        return False
    return not key.strip().upper().startswith(SECRET_PREFIX)


def public_key_of(identity: str) -> str:
    from pyrage import x25519

    try:
        return str(x25519.Identity.from_str(identity).to_public())
    except Exception as exc:
        raise ConfigError(
            "encryption identity is not a valid age X25519 secret key; "
            "generate one with `seawall keygen`"
        ) from exc


@dataclass(frozen=True)
class KeyRing:
    """What the pipeline may encrypt to and decrypt with."""

    recipients: tuple[str, ...] = ()
    identities: tuple[str, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        *,
        key: str | None = None,
        recipients: list[str] | tuple[str, ...] = (),
        recipients_file: Path | None = None,
        identity: str | None = None,
        identity_files: list[Path] | tuple[Path, ...] = (),
    ) -> KeyRing:
        """Assemble keys from configuration values (files read here)."""
        recs: list[str] = []
        for item in recipients:
            recs.extend(parse_recipients(item))
        if recipients_file is not None:
            try:
                recs.extend(parse_recipients(recipients_file.read_text()))
            except OSError as exc:
                raise ConfigError(
                    f"ENCRYPTION_RECIPIENTS_FILE: cannot read {recipients_file} ({exc.strerror})"
                ) from exc
        ids: list[str] = []
        if identity:
            ids.extend(parse_identities(identity))
        for path in identity_files:
            try:
                ids.extend(parse_identities(path.read_text()))
            except OSError as exc:
                raise ConfigError(
                    f"ENCRYPTION_IDENTITY_FILE: cannot read {path} ({exc.strerror})"
                ) from exc
        passphrase = None
        if key:
            key = key.strip()
            if key.upper().startswith(SECRET_PREFIX):
                ids.append(key)
                recs.append(public_key_of(key))
            else:
                passphrase = key
        return cls(tuple(dict.fromkeys(recs)), tuple(dict.fromkeys(ids)), passphrase)

    @property
    def can_encrypt(self) -> bool:
        return bool(self.recipients or self.passphrase)

    @property
    def mode(self) -> str | None:
        """``x25519`` when recipients exist (preferred), else ``scrypt``."""
        if self.recipients:
            return "x25519"
        if self.passphrase:
            return "scrypt"
        return None

    def fingerprints(self) -> list[str]:
        if self.mode == "x25519":
            return [fingerprint(r) for r in self.recipients]
        return []

    def identity_fingerprints(self) -> list[str]:
        return [fingerprint(public_key_of(i)) for i in self.identities]


def generate_identity() -> tuple[str, str]:
    """A new X25519 key pair as (secret key, public key)."""
    from pyrage import x25519

    ident = x25519.Identity.generate()
    return str(ident), str(ident.to_public())


def identity_file_text(secret: str, public: str) -> str:
    """The key file in age-keygen's format, readable by ``age -d -i``."""
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    return f"# created: {created}\n# public key: {public}\n{secret}\n"
