"""A stand-in daemon for the supervisor's tests: ``python -m tests.support.sleeper FILE``
writes its pid into FILE and sleeps until a signal ends it."""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(60)
