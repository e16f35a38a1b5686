"""Realistic application data, generated server-side.

Why not pgbench: its rows are blank-padded ``char(84)`` filler that any
compressor squeezes 20x or more, which flatters every tool. Real application
data compresses about 4-5x with gzip: prose with a skewed (Zipf-like) word
distribution, JSON documents whose keys repeat but whose values vary, UUIDs,
money amounts and timestamps that are mostly incompressible digits.

Generation is plain SQL (``generate_series`` over a vocabulary and a pool of
pre-built sentences) so 1 GB takes a few minutes, not an hour of client
round trips. Everything is seeded (``setseed``) so runs are comparable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import psycopg

from bench.cluster import Cluster

DB_NAME = "benchdb"
DATAGEN_VERSION = 2  # bump when the generated data changes (cache key)

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "br",
    "ch",
    "cl",
    "dr",
    "fr",
    "gr",
    "pl",
    "pr",
    "sh",
    "st",
    "th",
    "tr",
    "",
]
_VOWELS = ["a", "e", "i", "o", "u", "ea", "ai", "ou", "io", "y"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "rt"]


def vocabulary(size: int = 6000, seed: int = 7) -> list[str]:
    """Pseudo-English words, each unique, shortest-first like real frequency."""
    rng = random.Random(seed)
    words: set[str] = set()
    out: list[str] = []
    while len(out) < size:
        syllables = 1 + min(3, int(rng.expovariate(1.1)))
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        )
        if len(word) > 1 and word not in words:
            words.add(word)
            out.append(word)
    out.sort(key=len)
    return out


def zipf_bag(words: list[str], total: int = 60000) -> list[str]:
    """A bag where the word of rank r appears ~ total/(r*H) times.

    Picking uniformly from the bag samples a Zipf(1) distribution, which is
    how word frequencies in real text behave; it is what makes text compress
    4-6x rather than 2x (uniform words) or 50x (repeated filler).
    """
    harmonic = sum(1.0 / r for r in range(1, len(words) + 1))
    bag: list[str] = []
    for rank, word in enumerate(words, start=1):
        bag.extend([word] * max(1, round(total / (rank * harmonic))))
    return bag


SETUP_SQL = """
DROP TABLE IF EXISTS bench_words, bench_sentences;
CREATE UNLOGGED TABLE bench_words(id int PRIMARY KEY, w text NOT NULL);
CREATE UNLOGGED TABLE bench_sentences(id int PRIMARY KEY, s text NOT NULL);
CREATE TABLE IF NOT EXISTS customers(
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL,
    profile jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS orders(
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency char(3) NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz,
    shipping jsonb NOT NULL,
    note text
);
CREATE TABLE IF NOT EXISTS events(
    id bigint PRIMARY KEY,
    event_uuid uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS documents(
    id bigint PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL,
    tags text[] NOT NULL,
    created_at timestamptz NOT NULL
);
"""

# Set-based on purpose: random ids are drawn in an OFFSET 0 subquery (so the
# planner keeps them as columns) and resolved with index lookups. A volatile
# random() inside a join condition would force a scan per row.
SENTENCES_SQL = """
INSERT INTO bench_sentences(id, s)
SELECT g, upper(left(x, 1)) || substr(x, 2) || (ARRAY['.', '.', '.', '.', '?', '!'])[1 + g % 6]
FROM (
    SELECT p.g, string_agg(w.w, ' ' ORDER BY p.k) AS x
    FROM (SELECT g, k, 1 + floor(random() * {nw})::int AS wid
          FROM generate_series(1, {n}) AS g, LATERAL generate_series(1, 4 + (g::bigint * 7919) % 16) AS k
          OFFSET 0) p
    JOIN bench_words w ON w.id = p.wid
    GROUP BY p.g
) t;
"""

# the row source every batch statement selects from: g plus random picks
_PICKS = (
    "(SELECT g, {rs}, "
    "ARRAY(SELECT 1 + floor(random() * {pool})::int FROM generate_series(1, {nsent}) "
    "WHERE g IS NOT NULL) AS sids FROM generate_series({lo} + 1, {lo} + {n}) AS g OFFSET 0) t"
)
_W = "(SELECT w FROM bench_words WHERE id = t.r{i})"
_PARA = "(SELECT string_agg(s, ' ') FROM bench_sentences WHERE id = ANY(t.sids))"

# rows per batch (about 20 MB on disk in all)
BATCH = {"nc": 1000, "no": 10000, "ne": 15000, "nd": 750}
SENTENCE_POOL = 400_000
MESSAGE_POOL = 3_000
NOTE_POOL = 30_000

BATCH_SQL = [
    # (template, offset key, row-count key, sentences per row, sentence pool):
    # log messages and order notes come from small pools like the templated
    # strings of real applications; documents from the whole pool.
    (
        """
INSERT INTO customers
SELECT g,
       initcap({w1}) || ' ' || initcap({w2}),
       {w3} || '.' || {w4} || (g % 97) || '@' ||
           (ARRAY['example.com','mail.net','corp.io','post.org'])[1 + g % 4],
       (ARRAY['DE','US','FR','GB','NL','ES','IT','PL','SE','BR','IN','JP'])[1 + floor(random()*random()*12)::int],
       timestamptz '2019-01-01' + random() * interval '2000 days',
       jsonb_build_object(
         'address', jsonb_build_object('street', initcap({w5}) || ' Street ' || (1 + g % 300),
                                       'city', initcap({w6}), 'zip', lpad((g * 37 % 99999)::text, 5, '0')),
         'preferences', jsonb_build_object('newsletter', random() < 0.3, 'language',
                                           (ARRAY['en','de','fr','es'])[1 + g % 4], 'theme', 'light'),
         'tags', jsonb_build_array({w7}, {w8}),
         'loyalty', jsonb_build_object('tier', (ARRAY['bronze','silver','gold'])[1 + floor(random()*random()*3)::int],
                                       'points', floor(random() * 5000)::int))
FROM {picks};
""",
        "c0",
        "nc",
        "0",
        SENTENCE_POOL,
    ),
    (
        """
INSERT INTO orders
SELECT g,
       1 + floor(random() * ({c0} + {nc}))::bigint,
       round((exp(random() * 7) + random())::numeric, 2),
       (ARRAY['EUR','EUR','EUR','USD','USD','GBP'])[1 + g % 6],
       (ARRAY['delivered','delivered','delivered','shipped','paid','cancelled','refunded'])[1 + floor(random()*7)::int],
       ts, ts + random() * interval '10 days',
       jsonb_build_object(
         'carrier', (ARRAY['dhl','ups','dpd','fedex','usps'])[1 + floor(random()*random()*5)::int],
         'service', (ARRAY['standard','standard','express','economy'])[1 + g % 4],
         'address', jsonb_build_object('city', initcap({w1}), 'country',
                        (ARRAY['DE','US','FR','GB','NL'])[1 + floor(random()*random()*5)::int]),
         'items', (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || lpad((1 + floor(random()*random()*4000))::int::text, 6, '0'),
                                                       'qty', 1 + floor(random()*random()*4)::int,
                                                       'unit_price', round((random() * 80 + 1)::numeric, 2)))
                   FROM generate_series(1, 1 + g % 3) WHERE g IS NOT NULL)),
       CASE WHEN g % 5 = 0 THEN {para} END
FROM (SELECT *, timestamptz '2021-01-01' + g * interval '90 seconds'
                + random() * interval '80 seconds' AS ts FROM {picks}) t;
""",
        "o0",
        "no",
        "1 + g % 2",
        NOTE_POOL,
    ),
    (
        """
INSERT INTO events
SELECT g, gen_random_uuid(), ts, kind,
       jsonb_build_object(
         'user_id', 1 + floor(random() * ({c0} + {nc}))::bigint,
         'request', jsonb_build_object(
             'method', (ARRAY['GET','GET','GET','POST','PUT','DELETE'])[1 + g % 6],
             'path', '/api/v2/' || {w1} || '/' || (g % 1000) || '/' || {w2},
             'status', (ARRAY[200,200,200,200,201,204,301,404,500])[1 + floor(random()*9)::int],
             'duration_ms', round((random() * random() * 900)::numeric, 1)),
         'client', jsonb_build_object('agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)',
                       'Mozilla/5.0 (Macintosh; Intel Mac OS X 13_4)', 'okhttp/4.11.0',
                       'python-httpx/0.27'])[1 + g % 4],
                   'ip', '10.' || (g % 256) || '.' || floor(random()*256)::int || '.' || floor(random()*256)::int),
         'context', jsonb_build_object(
             'locale', (ARRAY['en-US','en-US','en-GB','de-DE','fr-FR'])[1 + g % 5],
             'platform', (ARRAY['web','web','ios','android'])[1 + floor(random()*4)::int],
             'app_version', '3.' || (12 + g / 200000) || '.' || floor(random()*random()*8)::int,
             'flags', jsonb_build_object('new_checkout', g % 3 = 0, 'dark_mode', random() < 0.2,
                                         'beta', false)),
         'message', CASE WHEN g % 2 = 0 THEN {para} END)
FROM (SELECT *, timestamptz '2024-01-01' + g * interval '500 milliseconds'
                + random() * interval '400 milliseconds' AS ts,
             (ARRAY['page_view','page_view','api_call','login','logout','purchase','error'])[1 + floor(random()*7)::int] AS kind
      FROM {picks}) t;
""",
        "e0",
        "ne",
        "1",
        MESSAGE_POOL,
    ),
    (
        """
INSERT INTO documents
SELECT g, initcap({w1} || ' ' || {w2} || ' ' || {w3}), {para}, ARRAY[{w4}, {w5}, {w6}],
       timestamptz '2018-01-01' + random() * interval '2500 days'
FROM {picks};
""",
        "d0",
        "nd",
        "3 + g % 25",
        SENTENCE_POOL,
    ),
]

INDEX_SQL = """
CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders(customer_id);
CREATE INDEX IF NOT EXISTS orders_created_idx ON orders(created_at);
CREATE INDEX IF NOT EXISTS events_occurred_idx ON events(occurred_at);
CREATE INDEX IF NOT EXISTS customers_email_idx ON customers(email);
CREATE INDEX IF NOT EXISTS documents_created_idx ON documents(created_at);
DROP TABLE IF EXISTS bench_words, bench_sentences;
"""


def _render(
    template: str,
    lo_key: str,
    n_key: str,
    nsent: str,
    pool: int,
    offsets: dict[str, int],
    n_words: int,
) -> str:
    picks = _PICKS.format(
        rs=", ".join(f"1 + floor(random() * {n_words})::int AS r{i}" for i in range(1, 9)),
        pool=pool,
        nsent=nsent,
        lo=offsets[lo_key],
        n=BATCH[n_key],
    )
    return template.format(
        picks=picks,
        para=_PARA,
        **{f"w{i}": _W.format(i=i) for i in range(1, 9)},
        **{k: str(v) for k, v in BATCH.items()},
        **{k: str(v) for k, v in offsets.items()},
    )


def _db_size(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(str(row[0])) if row else 0


def generate(cluster: Cluster, size_mb: int, log: Callable[[str], None] = print) -> int:
    """Create DB_NAME with about ``size_mb`` MB on disk; return its size in bytes."""
    t0 = time.monotonic()
    cluster.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    cluster.execute(f"CREATE DATABASE {DB_NAME}")
    with cluster.connect(DB_NAME) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(SETUP_SQL.encode())
        conn.execute("SELECT setseed(0.42)")
        bag = zipf_bag(vocabulary())
        with conn.cursor() as cur, cur.copy("COPY bench_words(id, w) FROM STDIN") as copy:
            for i, word in enumerate(bag, start=1):
                copy.write_row((i, word))
        conn.execute(SENTENCES_SQL.format(n=SENTENCE_POOL, nw=len(bag)).encode())
        log(
            f"datagen: vocabulary {len(set(bag))} words, {SENTENCE_POOL} sentences "
            f"({time.monotonic() - t0:.1f}s)"
        )
        pool_bytes = _db_size(conn)
        target = pool_bytes + size_mb * 1024 * 1024 * 0.92  # indexes add ~7%
        batch_no = 0
        while True:
            size = _db_size(conn)
            if size >= target:
                break
            offsets = {
                "c0": batch_no * BATCH["nc"],
                "o0": batch_no * BATCH["no"],
                "e0": batch_no * BATCH["ne"],
                "d0": batch_no * BATCH["nd"],
            }
            for template, lo_key, n_key, nsent, pool in BATCH_SQL:
                sql = _render(template, lo_key, n_key, nsent, pool, offsets, len(bag))
                conn.execute(sql.encode())
            batch_no += 1
            if batch_no % 5 == 0:
                log(f"datagen: {size / 2**20:.0f} / {size_mb} MB ({time.monotonic() - t0:.0f}s)")
        conn.execute(INDEX_SQL.encode())
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        size = _db_size(conn)
    log(f"datagen: {DB_NAME} is {size / 2**20:.0f} MB after {time.monotonic() - t0:.0f}s")
    return size
