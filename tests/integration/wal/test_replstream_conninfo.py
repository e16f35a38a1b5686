"""The replication connection of base backups with tablespaces (postgres/physical/replstream.py).

Every other connection passes the password to libpq as a keyword argument
(psycopg escapes it); the replication connection builds a conninfo string
itself. libpq's conninfo syntax escapes a quote or a backslash inside a
quoted value with a backslash (SQL's doubled quote is no escape there), so
a password holding either must still open the stream, as it opens every
other connection.
"""

from __future__ import annotations

import pytest

from seawall.errors import SourceUnavailableError
from seawall.postgres.physical.replstream import BaseBackupStream
from seawall.postgres.tools.base import ConnParams
from tests.support.pgcluster import PgCluster

PASSWORDS = ["it's", "back\\slash", "both ' and \\ and a space", "''", "\\'"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_quotes_or_backslashes_opens_the_stream(
    pg: PgCluster, password: str
) -> None:
    literal = password.replace("'", "''")
    pg.psql(f"CREATE ROLE \"bk user\" LOGIN REPLICATION PASSWORD '{literal}'")
    conn = ConnParams(
        host=pg.host, port=pg.port, user="bk user", dbname="postgres", password=password
    )
    stream = BaseBackupStream.open(conn, "seawall 'quoted' label", fast_checkpoint=True)
    try:
        assert stream.start_lsn and "/" in stream.start_lsn
    finally:
        stream.close()
    # the server ended the backup it started: another one may begin at once
    stream = BaseBackupStream.open(conn, "again", fast_checkpoint=True)
    stream.close()


def test_a_refused_password_is_never_quoted_in_the_error(pg: PgCluster) -> None:
    pg.psql("CREATE ROLE bk LOGIN REPLICATION PASSWORD 'right'")
    conn = ConnParams(host=pg.host, port=pg.port, user="bk", password="wrong'Tail-of-it")
    with pytest.raises(SourceUnavailableError) as err:
        BaseBackupStream.open(conn, "x", fast_checkpoint=True)
    assert "Tail-of-it" not in str(err.value)
    assert "password authentication failed" in str(err.value)
