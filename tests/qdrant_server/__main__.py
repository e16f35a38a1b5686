"""Run the Qdrant test server standalone: ``python -m tests.qdrant_server``.

Why: to poke at seawall by hand (``QDRANT_URL=... seawall qdrant backup``), and
to exercise the ``QDRANT_URL`` switch of the fixtures against something that is
not in the test process. Binds 127.0.0.1 only; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading

from .server import DEFAULT_VERSION, QdrantTestCluster, QdrantTestServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.qdrant_server")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--peers", type=int, default=1, help="more than 1 starts a cluster")
    parser.add_argument(
        "--demo",
        type=int,
        default=0,
        metavar="POINTS",
        help="create collection 'demo' with POINTS points",
    )
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.peers > 1:
        cluster = QdrantTestCluster(
            peers=args.peers, api_key=args.api_key, version=args.version
        ).start()
        if args.demo:
            cluster.create_collection("demo", 8, points=args.demo, shard_number=args.peers - 1)
        print(" ".join(cluster.urls), flush=True)
        stop.wait()
        cluster.stop()
        return
    server = QdrantTestServer(api_key=args.api_key, version=args.version).start()
    if args.demo:
        server.create_collection("demo", 8, points=args.demo)
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    for violation in server.spec_violations:
        print(f"spec violation: {violation}", flush=True)


if __name__ == "__main__":
    main()
