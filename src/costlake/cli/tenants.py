"""`costlake tenants …`: which tenant owns which account."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costlake.cli.context import out, state

app = typer.Typer(help="Account ownership: which tenant owns which account.", no_args_is_help=True)


@app.command("load")
def tenants_load(
    file: Annotated[Path, typer.Argument(help="CSV with account_id,tenant_id[,account_name].")],
) -> None:
    """Assign accounts to tenants (accounts with no owner belong to tenant 'unassigned')."""
    from costlake.pipeline.tenants import load_tenants

    updated, added = load_tenants(state.warehouse(), file)
    out.print(f"{file}: {updated} account(s) updated, {added} not seen yet added")
