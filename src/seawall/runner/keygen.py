"""``seawall keygen``: write a new age X25519 key pair.

The secret key goes to a file created with mode 0600 (never to stdout unless
asked, so it does not end up in a terminal log); the public key is printed,
because that is what goes into ENCRYPTION_RECIPIENTS on the backup side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from seawall.errors import ConfigError
from seawall.pipeline.keys import generate_identity, identity_file_text
from seawall.runner.common import command


@command
def keygen(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the secret key (mode 0600).")
    ],
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Generate an age key pair: secret key to a file, public key to stdout."""
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; refusing to overwrite a key (use --force)")
    secret, public = generate_identity()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(output, flags, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(identity_file_text(secret, public))
    os.chmod(output, 0o600)
    typer.echo(public)
    typer.echo(
        f"secret key written to {output}; keep it where restores run "
        f"(ENCRYPTION_IDENTITY_FILE={output}); give the public key above to backups "
        "(ENCRYPTION_RECIPIENTS)",
        err=True,
    )
