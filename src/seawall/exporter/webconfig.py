"""Prometheus exporter-toolkit web config file (``--web.config.file``).

Why this format: every Prometheus exporter reads the same YAML file for TLS
and basic auth, and operators (and the Prometheus Operator's
``web.config.file`` secrets) already have one. Supported keys::

    tls_server_config:
      cert_file: server.crt          # PEM certificate (chain)
      key_file: server.key           # PEM private key
      client_ca_file: ca.crt         # CA for client certificates (mTLS)
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12             # TLS10 | TLS11 | TLS12 (default) | TLS13
      max_version: TLS13
    http_server_config:
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hash (htpasswd -B, or bcrypt)

``cipher_suites``, ``curve_preferences``, ``prefer_server_cipher_suites``
and ``http2`` are accepted and ignored (Python's TLS defaults apply);
any other key is an error, as in exporter-toolkit.

``client_auth_type``: ``RequireAndVerifyClientCert`` and
``VerifyClientCertIfGiven`` verify against ``client_ca_file``;
``NoClientCert``, ``RequestClientCert`` and ``RequireAnyClientCert`` do
not verify client certificates (Python cannot request a certificate
without verifying it, so the latter two behave like ``NoClientCert``).

The file and every file it names are re-read when their ``stat`` changes,
checked at each connection, so certificates rotate without a restart. A
file that becomes invalid keeps the last good configuration in force (and
logs the error) rather than locking Prometheus out or serving plain HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from seawall.errors import ConfigError

log = logging.getLogger("seawall.exporter.web")

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}


@dataclass
class WebConfig:
    """A parsed, checked web config; ``ssl_context`` is None for plain HTTP."""

    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def auth_required(self) -> bool:
        return bool(self.users)


def _resolve(base: Path, value: Any, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"web config: {what} must be a file path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def parse_web_config(path: Path) -> tuple[WebConfig, list[Path]]:
    """Parse the file; returns the config and every file it depends on."""
    import yaml  # type: ignore[import-untyped]

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"web config {path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"web config {path}: not valid YAML ({exc})") from exc
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"web config {path}: expected a mapping at the top level")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"web config {path}: unknown key(s) {sorted(unknown)}")
    base = path.parent
    deps: list[Path] = [path]
    cfg = WebConfig()

    users = raw.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise ConfigError(
            f"web config {path}: basic_auth_users must map user names to bcrypt hashes"
        )
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"web config {path}: user {user!r}: password must be a bcrypt hash")
        cfg.users[str(user)] = hashed.encode()

    http = raw.get("http_server_config") or {}
    if not isinstance(http, dict):
        raise ConfigError(f"web config {path}: http_server_config must be a mapping")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"web config {path}: http_server_config.headers must be a mapping")
    cfg.headers = {str(k): str(v) for k, v in headers.items()}

    tls = raw.get("tls_server_config")
    if tls:
        if not isinstance(tls, dict):
            raise ConfigError(f"web config {path}: tls_server_config must be a mapping")
        bad = set(tls) - _TLS_KEYS
        if bad:
            raise ConfigError(f"web config {path}: unknown tls_server_config key(s) {sorted(bad)}")
        cfg.ssl_context = _tls_context(path, base, tls, deps)
    return cfg, deps


def _tls_context(path: Path, base: Path, tls: dict[str, Any], deps: list[Path]) -> ssl.SSLContext:
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise ConfigError(f"web config {path}: tls_server_config needs cert_file and key_file")
    cert = _resolve(base, tls["cert_file"], "cert_file")
    key = _resolve(base, tls["key_file"], "key_file")
    deps += [cert, key]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.minimum_version = _TLS_VERSIONS[str(tls.get("min_version") or "TLS12")]
        if tls.get("max_version"):
            ctx.maximum_version = _TLS_VERSIONS[str(tls["max_version"])]
    except KeyError as exc:
        raise ConfigError(
            f"web config {path}: unknown TLS version {exc.args[0]!r}; use TLS10, TLS11, TLS12 or TLS13"
        ) from None
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"web config {path}: cannot load {cert} / {key} ({exc})") from exc
    auth = str(tls.get("client_auth_type") or "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise ConfigError(
            f"web config {path}: unknown client_auth_type {auth!r}; use one of {sorted(_CLIENT_AUTH)}"
        )
    ca = tls.get("client_ca_file")
    if ca:
        if auth == "NoClientCert":
            raise ConfigError(
                f"web config {path}: client_ca_file is set but client_auth_type is NoClientCert; "
                "set client_auth_type: RequireAndVerifyClientCert"
            )
        ca_path = _resolve(base, ca, "client_ca_file")
        deps.append(ca_path)
        try:
            ctx.load_verify_locations(cafile=str(ca_path))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"web config {path}: cannot load client CA {ca_path} ({exc})"
            ) from exc
    elif _CLIENT_AUTH[auth] != ssl.CERT_NONE:
        raise ConfigError(f"web config {path}: client_auth_type {auth} needs client_ca_file")
    ctx.verify_mode = _CLIENT_AUTH[auth]
    return ctx


def _stamp(paths: list[Path]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((0, 0, 0))
    return tuple(out)


class WebConfigLoader:
    """The current web config, re-read when the file (or a file it names) changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ok_cache: dict[tuple[str, bytes], bytes] = {}
        if path is None:
            self._config = WebConfig()
            self._deps: list[Path] = []
            self._stamp: tuple[tuple[int, int, int], ...] = ()
            return
        self._config, self._deps = parse_web_config(path)  # startup: errors are fatal
        self._stamp = _stamp(self._deps)

    def current(self) -> WebConfig:
        if self.path is None:
            return self._config
        with self._lock:
            stamp = _stamp(self._deps)
            if stamp != self._stamp:
                try:
                    config, deps = parse_web_config(self.path)
                except ConfigError as exc:
                    log.error("%s; keeping the previous web configuration", exc)
                else:
                    self._config, self._deps = config, deps
                    self._ok_cache.clear()
                    log.info("web config %s reloaded", self.path)
                self._stamp = _stamp(self._deps)
            return self._config

    def check_basic_auth(self, config: WebConfig, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries a valid user/password."""
        if not config.auth_required:
            return True
        if not header or not header.startswith("Basic "):
            return False
        import base64
        import binascii

        try:
            user, sep, password = (
                base64.b64decode(header[6:], validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = config.users.get(user)
        if not sep or hashed is None:
            return False
        # bcrypt is deliberately slow (~50-250 ms); remember a success for
        # this exact (user, password, hash) so a 15 s scrape interval stays cheap
        digest = hashlib.sha256(password.encode()).digest()
        key = (user, digest)
        with self._lock:
            known = self._ok_cache.get(key)
        if known is not None and hmac.compare_digest(known, hashed):
            return True
        try:
            ok = bool(bcrypt.checkpw(password.encode(), hashed))
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._ok_cache[key] = hashed
        return ok
