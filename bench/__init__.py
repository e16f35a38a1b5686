"""seawall benchmark harness: seawall beside its peers, same data, same run.

Run ``python -m bench --help``. Nothing here is a test: the numbers are
printed (and optionally written as JSON/markdown), never asserted.
"""

from __future__ import annotations
