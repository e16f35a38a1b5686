"""age X25519 decryption of one in-memory file with OpenSSL, for the lean wal-fetch.

Why not pyrage (what the general path uses for files this small): it
decrypts at ~100 MB/s on the bench machine, ~40 ms for a 4 MiB compressed
segment, against ~12 ms through OpenSSL's ChaCha20-Poly1305. Why not
:mod:`seawall.pipeline.age_x25519`: it reaches OpenSSL through
``cryptography.hazmat.primitives``, whose import chain costs ~25 ms per
process. This module uses only the Rust extension those primitives wrap
(``cryptography.hazmat.bindings._rust``, ~5 ms) and the standard library's
HMAC, and understands exactly what wal-push writes: X25519 stanzas (plus
any other stanza, skipped, e.g. grease), the header MAC, the STREAM
payload. Anything it does not understand, and any authentication failure,
raises :class:`Undecodable`; the caller then lets the general path decode
the file and explain. A standing interoperability check: wal-push encrypts
with pyrage (rage), this decrypts.

Format (C2SP age.md): ``age-encryption.org/v1``, stanzas ``-> type args``
with a base64 body wrapped at 64 columns (the last line shorter), ``---
<mac>``; then a 16-byte nonce and 64 KiB chunks sealed with
ChaCha20-Poly1305 under ``HKDF(file_key, nonce, "payload")``, the nonce of
chunk i being i as 11 big-endian bytes plus 1 for the last chunk.
"""

from __future__ import annotations

import hmac

VERSION = b"age-encryption.org/v1"
X25519_INFO = b"age-encryption.org/v1/X25519"
CHUNK = 64 * 1024
TAG = 16
FILE_KEY = 16
NONCE = 16


class Undecodable(Exception):
    """Not an age X25519 file this module reads, or it does not authenticate."""


def _b64(text: bytes) -> bytes:
    import binascii

    if b"=" in text:  # age's base64 is unpadded
        raise Undecodable("padded base64")
    try:
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise Undecodable("bad base64") from exc


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869), 32 bytes: one expand block."""
    prk = hmac.digest(salt or b"\0" * 32, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _header(data: bytes) -> tuple[list[tuple[list[bytes], bytes]], bytes, bytes, int]:
    """(stanzas, bytes the MAC covers, the MAC, payload offset)."""
    end = data.find(b"\n---", 0, 64 * 1024)
    if end < 0 or not data.startswith(VERSION + b"\n"):
        raise Undecodable("no age header")
    eol = data.find(b"\n", end + 1)
    if eol < 0 or data[end + 4 : end + 5] != b" ":
        raise Undecodable("no header MAC")
    mac = _b64(data[end + 5 : eol])
    lines = data[len(VERSION) + 1 : end].split(b"\n")
    stanzas: list[tuple[list[bytes], bytes]] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith(b"-> "):
            raise Undecodable("not a stanza")
        args = lines[i][3:].split(b" ")
        body = b""
        i += 1
        while True:
            if i >= len(lines):
                raise Undecodable("stanza body not terminated")
            body += lines[i]
            i += 1
            if len(lines[i - 1]) < 64:
                break
        stanzas.append((args, _b64(body)))
    return stanzas, data[: end + 4], mac, eol + 1


def decrypt(data: bytes, identities: list[bytes]) -> bytes:
    """The plaintext of age file ``data`` for one of ``identities`` (32-byte X25519 secrets)."""
    from cryptography.hazmat.bindings._rust import openssl

    stanzas, maced, mac, offset = _header(data)
    x25519 = openssl.x25519
    keys = []
    for secret in identities:
        private = x25519.from_private_bytes(secret)
        keys.append((private, private.public_key().public_bytes_raw()))
    file_key = None
    for args, body in stanzas:
        if args[0] == b"scrypt":
            raise Undecodable("scrypt stanza")
        if args[0] != b"X25519":
            continue
        if len(args) != 2 or len(body) != FILE_KEY + TAG:
            raise Undecodable("malformed X25519 stanza")
        share = _b64(args[1])
        for private, public in keys:
            try:
                shared = private.exchange(x25519.from_public_bytes(share))
                wrap = _hkdf(shared, share + public, X25519_INFO)
                file_key = openssl.aead.ChaCha20Poly1305(wrap).decrypt(b"\0" * 12, body, None)
            except Exception:  # another recipient's stanza (InvalidTag), low-order point
                continue
            break
        if file_key is not None:
            break
    if file_key is None:
        raise Undecodable("no identity matched")
    if not hmac.compare_digest(hmac.digest(_hkdf(file_key, b"", b"header"), maced, "sha256"), mac):
        raise Undecodable("header MAC mismatch")
    nonce = data[offset : offset + NONCE]
    if len(nonce) != NONCE:
        raise Undecodable("truncated")
    opener = openssl.aead.ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload")).decrypt
    view = memoryview(data)[offset + NONCE :]
    sealed = CHUNK + TAG
    count = max(1, -(-len(view) // sealed))
    if len(view) - (count - 1) * sealed < TAG or (count > 1 and len(view) % sealed == TAG):
        raise Undecodable("truncated or empty last chunk")
    out = []
    try:
        for i in range(count):
            last = i == count - 1
            chunk = view[i * sealed : len(view) if last else (i + 1) * sealed]
            out.append(opener(i.to_bytes(11, "big") + (b"\x01" if last else b"\0"), chunk, None))
    except Exception as exc:  # InvalidTag: corrupt, truncated or trailing data
        raise Undecodable("payload authentication failed") from exc
    return b"".join(out)


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def identity_bytes(text: str) -> bytes:
    """The 32-byte secret of ``AGE-SECRET-KEY-1…`` (Bech32; its checksum is left to pyrage)."""
    data = text.strip().lower().rpartition("1")[2][:-6]
    acc = bits = 0
    out = bytearray()
    for c in data:
        v = _CHARSET.find(c)
        if v < 0:
            raise Undecodable("not an identity")
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if len(out) != 32:
        raise Undecodable("not an identity")
    return bytes(out)
