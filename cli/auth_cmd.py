"""`itsm auth`: keys for verifiable actors (ITSM_AUTH, see worker/auth.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli.common import FullHelpGroup


@click.group("auth", cls=FullHelpGroup)
def auth_group() -> None:
    """Keys that prove who approves, acknowledges or requests (ITSM_AUTH)."""


@auth_group.command("keygen")
@click.argument("user")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Private key file [default: $ITSM_HOME/keys/USER.pem].")
def keygen_cmd(user: str, out: Path | None) -> None:
    """Create USER's signing key. Keep the private key with the user (ITSM_AUTH_KEY=FILE);
    put the printed public key in the organisation definition as `public_key`."""
    from cli.common import ValidationFailed
    from worker.auth import generate_key_pem

    out = out or Path(os.environ.get("ITSM_HOME", ".itsm")) / "keys" / f"{user}.pem"
    if out.exists():
        raise ValidationFailed(f"{out} exists; remove it first to replace the key")
    pem, public = generate_key_pem()
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    click.echo(f"{user}: public_key: {public}")
    click.echo(f"private key written to {out} (mode 600); use it with ITSM_AUTH_KEY={out}", err=True)
