"""`costlake tenants …`: which tenant owns which account, and the API keys tenants use."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from costlake.cli.context import check_choice, out, print_secret, printable, say, state, warn
from costlake.errors import InputError

if TYPE_CHECKING:
    from costlake.lake.api_keys import ApiKey, KeyStore
    from costlake.lake.warehouse import Warehouse

app = typer.Typer(
    help="Tenants: which tenant owns which account, and their API keys for `costlake serve`.",
    no_args_is_help=True,
)


@app.command("load")
def tenants_load(
    file: Annotated[Path, typer.Argument(help="CSV with account_id,tenant_id[,account_name].")],
) -> None:
    """Assign accounts to tenants (accounts with no owner belong to tenant 'unassigned')."""
    from costlake.pipeline.tenants import load_tenants

    wh = state.warehouse(create=True)
    updated, added = load_tenants(wh, file)
    say(f"{file}: {updated} account(s) updated, {added} not seen yet added")
    for tenant, keys in _idle_keys(wh).items():
        warn(
            f"warning: tenant {tenant} owns no account now, and {keys} active API key(s) of it stay "
            f"active: a tenants file that gives {tenant} accounts again gives those keys their data; "
            "revoke them with `costlake tenants revoke-key`"
        )


def _idle_keys(wh: Warehouse) -> dict[str, int]:
    """Active API keys of tenants that own no account (sorted by tenant): a key acts for a tenant id,
    whoever that id is given to later."""
    from costlake.lake.api_keys import KeyStore
    from costlake.tables import DIM_ACCOUNT

    owners = set(wh.read_rows(DIM_ACCOUNT).column("tenant_id").to_pylist())
    idle: dict[str, int] = {}
    for key in KeyStore.for_settings(wh.settings, wh.root).list(include_revoked=False):
        if key.tenant_id is not None and key.tenant_id not in owners:
            idle[key.tenant_id] = idle.get(key.tenant_id, 0) + 1
    return dict(sorted(idle.items()))


def _key_store() -> KeyStore:
    from costlake.lake.api_keys import KeyStore

    wh = state.warehouse()
    return KeyStore.for_settings(wh.settings, wh.root)


@app.command("add-key")
def tenants_add_key(
    tenant: Annotated[
        str | None,
        typer.Argument(help="The tenant the key acts for: one that owns an account in dim_account."),
    ] = None,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin",
            help="An admin key (no TENANT): it acts for any tenant a request names in its "
            "X-Costlake-Tenant header.",
        ),
    ] = False,
    label: Annotated[
        str | None, typer.Option(help="A note shown in listings, e.g. who holds the key.")
    ] = None,
) -> None:
    """Make an API key for `costlake serve` (sent as `Authorization: Bearer <key>`).

    The key is printed once, alone on the last line, and stored only as its SHA-256 hash: store it now
    (`KEY=$(costlake tenants add-key TENANT | tail -1)`); if it is lost, revoke it and make another."""
    from costlake.lake.api_keys import KeyStore

    if admin and tenant is not None:
        raise InputError("--admin makes a key for every tenant: give no TENANT with it")
    if not admin and tenant is None:
        raise InputError("give the TENANT the key acts for, or --admin for an admin key")
    wh = state.warehouse()
    if tenant is not None:
        from costlake.catalog.views import tenant_accounts

        # The check behind every reader's tenant cut (readers.accounts raises the same UnknownTenant),
        # without opening the lake: an unknown or misspelt tenant stops here, exit 1.
        tenant_accounts(wh, tenant)
    record, key = KeyStore.for_settings(wh.settings, wh.root).add(tenant, admin=admin, label=label)
    owner = "admin (any tenant)" if record.admin else f"tenant {record.tenant_id}"
    say(f"API key {record.key_id} for {owner}; shown once: store it now")
    print_secret(key)


def _key_row(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "tenant_id": key.tenant_id,
        "admin": key.admin,
        "label": key.label,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


def _when(moment: dt.datetime | None) -> str:
    return "active" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


@app.command("list-keys")
def tenants_list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only keys whose id starts with this.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """List API keys: id, tenant ("(admin)" for admin keys), label, when made, when revoked.

    The keys themselves cannot be listed: only their hashes are stored."""
    check_choice("--format", fmt, ("text", "json"))
    keys = _key_store().list(tenant_id=tenant, prefix=prefix)
    if fmt == "json":
        sys.stdout.write(json.dumps([_key_row(k) for k in keys], indent=2) + "\n")
        return
    if not keys:
        out.print("no API keys", markup=False, highlight=False)
        return
    table = Table()
    for name in ("key", "tenant", "label", "created", "revoked"):
        table.add_column(name)
    for k in keys:
        tenant_shown = "(admin)" if k.admin else str(k.tenant_id)
        cells = (k.key_id, tenant_shown, k.label or "", _when(k.created_at), _when(k.revoked_at))
        table.add_row(*(Text(printable(c)) for c in cells))
    out.print(table)


@app.command("revoke-key")
def tenants_revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (clk_…), or enough of its start to be unique.")],
) -> None:
    """Revoke an API key for good.

    Running servers refuse it within 2 seconds (they check the key store again at least every 2).
    Revoking a revoked key keeps its first revocation time."""
    key = _key_store().revoke(key_id)
    owner = "admin" if key.admin else f"tenant {key.tenant_id}"
    say(f"API key {key.key_id} ({owner}) revoked at {_when(key.revoked_at)}")
