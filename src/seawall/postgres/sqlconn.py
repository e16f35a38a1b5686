"""Every psycopg connection seawall opens, with a client encoding that works
under every server encoding, and without the server's timeouts meant for
applications (:data:`NO_TIMEOUTS`).

Why: under a ``SQL_ASCII`` database libpq's default client encoding is
``SQL_ASCII`` too, and psycopg then hands text back as ``bytes``: ``SHOW
server_version_num`` became ``"b'150020'"`` and every backup of such a
database died with an internal error. A ``SQL_ASCII`` server does no
conversion at all, and its names and text may hold any byte, valid UTF-8 or
not; so such connections ask for ``LATIN1``, where each byte is one code
point: names decode losslessly and go back out as the same bytes. Every
other server encoding converts to ``UTF8`` without loss, so those
connections ask for ``UTF8`` whatever ``PGCLIENTENCODING`` says.

Names of a ``SQL_ASCII`` database are therefore recorded byte for byte as
Latin-1 code points; ``dumpscan`` reads the archive's names the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import psycopg

#: the client encoding a connection to a SQL_ASCII server switches to
SQL_ASCII_CLIENT: Final = "LATIN1"

#: What pg_dump and pg_restore set on their own sessions, for the same
#: reason: production databases and roles often carry ``statement_timeout``,
#: ``lock_timeout`` or ``idle_in_transaction_session_timeout`` (``ALTER
#: DATABASE/ROLE … SET``) meant for the application. They killed the row
#: counts the backup takes in the dump's snapshot (a backup of any table
#: slower to count than the timeout failed) and the deep verify's queries.
NO_TIMEOUTS: Final = (
    "SELECT set_config('statement_timeout', '0', false), "
    "set_config('lock_timeout', '0', false), "
    "set_config('idle_in_transaction_session_timeout', '0', false)"
)


def open_connection(
    conninfo: Mapping[str, str], *, autocommit: bool = True
) -> psycopg.Connection[tuple[object, ...]]:
    """``psycopg.connect`` with the client encoding fixed (see the module doc)."""
    conn = psycopg.connect(**{**conninfo, "client_encoding": "UTF8"}, autocommit=autocommit)  # type: ignore[arg-type]
    try:
        if conn.info.parameter_status("server_encoding") == "SQL_ASCII":
            conn.execute(f"SET client_encoding TO '{SQL_ASCII_CLIENT}'")
        conn.execute(NO_TIMEOUTS)
        if not autocommit:
            conn.commit()  # the settings stay for the session
    except BaseException:
        conn.close()
        raise
    return conn
