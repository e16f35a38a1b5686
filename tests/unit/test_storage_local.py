"""The local backend beyond the contract (tests/integration/storage/test_storage_contract.py):
a full disk's error, and no S3 import for a local repository."""

from __future__ import annotations

from pathlib import Path


def test_disk_full_is_a_storage_error(tmp_path: Path) -> None:
    """ENOSPC for real: /dev/full fails every write with ENOSPC."""
    import errno

    from seawall.storage.base import storage_error

    try:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x")
            fh.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        err = storage_error(exc, "obj")
        assert err.exit_code == 7 and "full" in str(err)


def test_storage_package_does_not_import_the_s3_backend() -> None:
    """boto3 costs hundreds of ms: only an s3:// repository may pay for it."""
    import subprocess
    import sys

    code = (
        "import sys, seawall.storage, seawall.storage.repository;"
        "bad = [m for m in sys.modules if m.startswith(('boto', 'seawall.storage.s3'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
