"""The human forms every screen prints (seawall.units), pinned.

status/check, the runner's commands and the progress bar used to carry
their own copies of these; the expected strings are what those copies
printed, so moving them to one module changed no output.
"""

from __future__ import annotations

import pytest

from seawall.units import human_duration, human_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3.25 * 1024**3, "3.2 GiB"),
        (2 * 1024**4, "2.0 TiB"),
        (3000 * 1024**4, "3000.0 TiB"),
    ],
)
def test_human_size(n: float | None, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (7199, "120m"),
        (7200, "2.0h"),
        (5.2 * 3600, "5.2h"),
        (172800, "2.0d"),
        (3.1 * 86400, "3.1d"),
    ],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text
