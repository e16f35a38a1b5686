"""Shared pieces of the logical-backup tests: a rich database, a way to
fingerprint a database's contents, and seawall environments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.pgcluster import PgCluster

RICH_SQL = """
CREATE ROLE app_reader LOGIN PASSWORD 'reader-pw-1';
CREATE SCHEMA app;
CREATE SCHEMA billing;
CREATE SEQUENCE billing.invoice_no START 1000 INCREMENT 7;
CREATE TABLE app.users (
    id bigserial PRIMARY KEY, name text NOT NULL, tags text[], scores int[],
    profile jsonb, avatar bytea, created timestamptz, balance numeric(14,4));
CREATE TABLE app.events (id bigserial PRIMARY KEY, user_id bigint REFERENCES app.users(id),
    kind text, payload jsonb, at timestamptz);
CREATE TABLE billing.invoices (no bigint PRIMARY KEY DEFAULT nextval('billing.invoice_no'),
    user_id bigint, amount numeric(12,2), doc oid, lines jsonb);
CREATE TABLE billing.audit (id serial PRIMARY KEY, what text, at timestamptz DEFAULT '2026-01-01');
CREATE FUNCTION billing.audit_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO billing.audit(what) VALUES ('invoice ' || NEW.no); RETURN NEW; END $$;
CREATE TRIGGER invoices_audit AFTER INSERT ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.audit_invoice();
CREATE FUNCTION app.user_label(u app.users) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT u.name || ' #' || u.id $$;
INSERT INTO app.users (name, tags, scores, profile, avatar, created, balance)
SELECT 'user ' || g, ARRAY['t' || (g % 5), 'x"y,z'], ARRAY[g, g * 2],
       jsonb_build_object('n', g, 'nested', jsonb_build_object('a', ARRAY[1, 2, g % 3]), 'u', 'ü€'),
       decode(md5(g::text), 'hex'), timestamptz '2025-01-01' + g * interval '1 minute',
       g * 1.2345
FROM generate_series(1, 2000) g;
INSERT INTO app.events (user_id, kind, payload, at)
SELECT 1 + g % 2000, 'k' || (g % 13), jsonb_build_object('i', g, 's', repeat('v', g % 40)),
       timestamptz '2025-02-01' + g * interval '3 seconds'
FROM generate_series(1, 100000) g;
INSERT INTO billing.invoices (user_id, amount, doc, lines)
SELECT g, g * 10.5, CASE WHEN g = 1 THEN lo_from_bytea(424242, decode(repeat('00ff10', 5000), 'hex')) END,
       jsonb_build_array(g, 'line')
FROM generate_series(1, 50) g;
SELECT setval('app.events_id_seq', 123456);
CREATE MATERIALIZED VIEW app.event_counts AS SELECT kind, count(*) AS n FROM app.events GROUP BY kind;
GRANT USAGE ON SCHEMA app TO app_reader;
GRANT SELECT ON app.users, app.event_counts TO app_reader;
GRANT SELECT (no, amount) ON billing.invoices TO app_reader;
ALTER TABLE billing.audit OWNER TO app_reader;
"""

SMALL_SQL = """
CREATE TABLE public.items (id serial PRIMARY KEY, name text, data jsonb, raw bytea);
INSERT INTO items (name, data, raw)
SELECT 'item ' || g, jsonb_build_object('g', g), decode(md5(g::text), 'hex') FROM generate_series(1, 3000) g;
SELECT lo_from_bytea(0, 'large object bytes');
"""

STATE_QUERIES = {
    "tables": """
        SELECT n.nspname || '.' || c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('app', 'billing', 'public')
        ORDER BY 1""",
    "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    "large_objects": "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1",
    "grants": """SELECT grantee, table_schema, table_name, privilege_type
        FROM information_schema.role_table_grants WHERE grantee = 'app_reader' ORDER BY 1, 2, 3, 4""",
    "column_grants": """SELECT grantee, table_name, column_name, privilege_type
        FROM information_schema.column_privileges WHERE grantee = 'app_reader' ORDER BY 1, 2, 3, 4""",
    "schema_acl": "SELECT nspname, nspacl::text FROM pg_namespace WHERE nspname IN ('app', 'billing') ORDER BY 1",
    "owners": """SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('app', 'billing') ORDER BY 1""",
    "functions": """SELECT p.proname, md5(p.prosrc) FROM pg_proc p
        WHERE p.pronamespace::regnamespace::text IN ('app', 'billing') ORDER BY 1""",
    "triggers": "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    "roles": "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'app_reader'",
}


def db_state(cluster: PgCluster, db: str) -> dict[str, Any]:
    """Everything a restore must reproduce, as comparable text."""
    state: dict[str, Any] = {k: cluster.psql(q, db) for k, q in STATE_QUERIES.items()}
    contents = {}
    for table in state["tables"].splitlines():
        contents[table] = cluster.psql(
            f"SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
            f" FROM {table} t",
            db,
        )
    state["contents"] = contents
    return state


def seawall_env(cluster: PgCluster, backup_dir: Path, **extra: str) -> dict[str, str]:
    env = cluster.env(BACKUP_DIR=str(backup_dir), LOG_FORMAT="json", PRUNE_AFTER_BACKUP="false")
    env.update(extra)
    return env


def manifests(backup_dir: Path, db: str) -> list[dict[str, Any]]:
    root = backup_dir / "postgresql" / "logical" / db
    if not root.is_dir():
        return []
    found = [json.loads(p.read_text()) for p in root.glob("*/manifest.json")]
    return sorted(found, key=lambda m: str(m["started_at"]))  # oldest first


def backup_folder(backup_dir: Path, db: str, backup_id: str) -> Path:
    return backup_dir / "postgresql" / "logical" / db / backup_id
