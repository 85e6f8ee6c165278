"""Operator verbs: ``palmid tenants create|list|revoke`` and ``palmid audit verify``.

``tenants create`` prints the new API key once, alone on stdout (so ``KEY=$(palmid tenants create ...)`` works);
everything else goes to stderr. Only a hash of the key is stored: it cannot be shown again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from palmid.cli.common import fail, settings_from_cli
from palmid.errors import PalmidError

tenants_app = typer.Typer(help="Manage merchants (tenants) and their API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)

DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (or PALMID_DATA_DIR).")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file (or PALMID_CONFIG).")]


def _parse_scopes(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


@tenants_app.command("create")
def create_tenant(
    name: Annotated[str, typer.Argument(help="Merchant name (unique).")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: enroll,identify,verify,erase,admin.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a merchant and print its API key ONCE on stdout."""
    from palmid.storage.repository import Store

    settings = settings_from_cli(config=config, data_dir=data_dir)
    try:
        with Store.open(settings=settings) as store:
            issued = store.create_tenant(name=name, scopes=_parse_scopes(scopes))
    except PalmidError as exc:
        fail(exc)
    typer.echo(
        f"tenant {name!r} created: tenant_id={issued.tenant_id} key_id={issued.key_id} "
        f"scopes={','.join(sorted(issued.scopes))} (the key below is shown only once)",
        err=True,
    )
    typer.echo(issued.api_key)


@tenants_app.command("list")
def list_tenants(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """List API keys (never the keys themselves): key id, tenant, scopes, state."""
    from palmid.storage.repository import Store

    settings = settings_from_cli(config=config, data_dir=data_dir)
    try:
        with Store.open(settings=settings) as store:
            keys = store.list_keys()
    except PalmidError as exc:
        fail(exc)
    typer.echo("key_id\ttenant\ttenant_id\tscopes\tcreated_at\tstate")
    for key in keys:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        typer.echo(
            f"{key.key_id}\t{key.tenant_name}\t{key.tenant_id}\t{','.join(sorted(key.scopes))}\t"
            f"{key.created_at.isoformat()}\t{state}"
        )


@tenants_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Key id (from `palmid tenants list`).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke an API key; it stops working at once."""
    from palmid.storage.repository import Store

    settings = settings_from_cli(config=config, data_dir=data_dir)
    try:
        with Store.open(settings=settings) as store:
            store.revoke_key(key_id=key_id)
    except PalmidError as exc:
        fail(exc)
    typer.echo(f"key {key_id} revoked")


@audit_app.command("verify")
def verify_audit(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Check the audit hash chain; exit 1 and name the first broken event when it was tampered with."""
    from palmid.storage.repository import Store

    settings = settings_from_cli(config=config, data_dir=data_dir)
    try:
        with Store.open(settings=settings) as store:
            result = store.verify_audit()
    except PalmidError as exc:
        fail(exc)
    if result.ok:
        typer.echo(f"audit log OK: {result.checked} events, chain intact")
        return
    typer.echo(
        f"audit log BROKEN at event {result.first_broken_id}: {result.reason} ({result.checked} events read)",
        err=True,
    )
    raise typer.Exit(code=1)
