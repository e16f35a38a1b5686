"""What the lean wal-push and wal-fetch share: the hand-over, the codec, the rules.

Both run once per 16 MiB segment with nothing imported but the standard
library's core, zstandard's C backend and pyrage (and, for wal-fetch,
cryptography's Rust extension): this module adds no other import. Each
handles only the common case and raises :class:`Fallback` for everything
else, *before* anything complete-looking is written, so the general path
(``push.push_wal``, ``fetch.fetch_wal``) decides and explains every refusal.
"""

from __future__ import annotations

import os

from seawall.walcore.layout import is_version_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

# seawall.catalog.naming.encode_segment leaves such names unchanged
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


class Fallback(Exception):
    """Not the lean path's case; nothing complete-looking was written. The general path takes over."""


def zstd_backend() -> ModuleType:
    """python-zstandard's C backend without the package's ``__init__``.

    Same classes, same output: ``zstandard/__init__.py`` re-exports exactly
    this module on CPython. Any surprise (another layout, another
    interpreter) falls back to the normal import.
    """
    import sys

    loaded = sys.modules.get("zstandard")
    if loaded is not None:
        return loaded
    try:
        import importlib.machinery as machinery

        for entry in sys.path:
            pkg = os.path.join(entry or ".", "zstandard")
            if not os.path.isfile(os.path.join(pkg, "__init__.py")):
                continue
            for suffix in machinery.EXTENSION_SUFFIXES:
                origin = os.path.join(pkg, "backend_c" + suffix)
                if os.path.isfile(origin):
                    name = "zstandard.backend_c"
                    loader = machinery.ExtensionFileLoader(name, origin)
                    spec = machinery.ModuleSpec(name, loader, origin=origin)
                    module = loader.create_module(spec)
                    if module is None:
                        break
                    loader.exec_module(module)
                    if hasattr(module, "ZstdCompressor"):
                        sys.modules[name] = module
                        return module
                    break
            break
    except (ImportError, OSError):
        pass
    import zstandard

    return zstandard


def zstd_workers(threads: int) -> int:
    """libzstd's worker count for ``COMPRESSION_THREADS`` (0: auto) on a WAL segment.

    Auto is two workers when the process may use two CPUs (its affinity
    mask, as a cpuset limits it), else zstd in the compressing thread: a
    16 MiB segment is eight 2 MiB jobs at level 1, and zstd is most of a
    push's CPU. Two workers halve its share of the wall time when a core is
    free and cost no more CPU when none is (81-83 vs 90-92 ms per bench
    segment; docs/adr/0013-wal-push-to-object-storage.md, addendum). The
    general path's codecs also run zstd's workers for 0.
    """
    if threads:
        return threads
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 0


def parse_recipients(text: str) -> list[str]:
    """``seawall.pipeline.keys.parse_recipients`` without its error: Fallback."""
    out = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("age1"):
            raise Fallback("not an age recipient")
        out.append(line)
    return out


def plain_cluster(cluster: str) -> bool:
    """Whether the archive directory of ``cluster`` is its name unchanged.

    Names that ``seawall.catalog.naming.encode_segment`` would encode are
    the general path's (it imports the catalog to encode them).
    """
    return (
        0 < len(cluster) <= 200
        and cluster[0] not in ".-"
        and ".." not in cluster
        and all(c in _SAFE for c in cluster)
    )


def versions(directory: str, name: str) -> list[str]:
    """Archived versions of ``name`` in its directory (FileNotFoundError if none).

    One rule for what counts as a version (:func:`seawall.walcore.layout.is_version_of`),
    for the lean push and fetch alike.
    """
    return [entry for entry in os.listdir(directory) if is_version_of(entry, name)]


def unlink_quietly(path: str) -> None:
    try:  # noqa: SIM105 - contextlib would be one more import on the hot path
        os.unlink(path)
    except OSError:
        pass
