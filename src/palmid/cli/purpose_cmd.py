"""Operator verbs for the promises kept over time: ``palmid retention run`` and ``palmid legal-request record``.

``retention run`` erases everyone past the retention schedule now (the service also does it on a schedule), with
the same crypto-shredding, signed receipts and audit events as a manual erasure; it prints one line per receipt.
A running service drops erased palms from its index at its next sweep (it also re-checks the store on every
match). ``legal-request record`` writes a government or legal request to the tamper-evident audit log, where the
public transparency report (``GET /v1/transparency``) counts it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from palmid.cli.common import fail, settings_from_cli
from palmid.errors import PalmidError

retention_app = typer.Typer(help="Enforce the retention schedule (BIPA 15(a)).", no_args_is_help=True)
legal_app = typer.Typer(help="Record government and legal requests for the transparency report.", no_args_is_help=True)

DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (or PALMID_DATA_DIR).")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file (or PALMID_CONFIG).")]


@retention_app.command("run")
def run_retention(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Erase everyone past the retention schedule now; print each signed receipt's id and ref."""
    from palmid.privacy.retention import retention_policy, sweep_retention
    from palmid.storage.repository import Store

    settings = settings_from_cli(config=config, data_dir=data_dir)
    policy = retention_policy(settings=settings)
    try:
        with Store.open(settings=settings) as store:
            sweep = sweep_retention(store)
    except PalmidError as exc:
        fail(exc)
    for receipt in sweep.receipts:
        typer.echo(f"erased\treceipt={receipt.receipt_id}\tsubject_ref={receipt.subject_ref}\t{receipt.erased_at}")
    typer.echo(
        f"retention sweep done: {sweep.erased} erased (max idle {policy.max_idle_days} days, "
        f"max total {policy.max_total_days} days)",
        err=True,
    )


@legal_app.command("record")
def record_legal_request(
    kind: Annotated[
        str, typer.Option("--kind", help="subpoena, warrant, court_order, national_security, preservation or other.")
    ],
    received: Annotated[str, typer.Option("--received", help="Date received, YYYY-MM-DD.")],
    disclosed: Annotated[str, typer.Option("--disclosed", help="What was disclosed: none, partial or full.")],
    reference: Annotated[str, typer.Option("--reference", help="Your own case reference (never a person's id).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Record a government or legal request in the audit log (counted by GET /v1/transparency)."""
    from palmid.privacy.transparency import legal_request
    from palmid.privacy.transparency import record_legal_request as record
    from palmid.storage.repository import Store

    try:
        received_on = date.fromisoformat(received)
    except ValueError:
        fail("--received must be a date YYYY-MM-DD")
    settings = settings_from_cli(config=config, data_dir=data_dir)
    try:
        request = legal_request(
            kind=kind,
            received_on=received_on,
            disclosed=disclosed,
            reference=reference,
            today=datetime.now(UTC).date(),
        )
        with Store.open(settings=settings) as store:
            record(store, request=request)
    except PalmidError as exc:
        fail(exc)
    typer.echo(f"legal request recorded: {request.audit_detail()}")
