"""`costlake tenants load FILE`: who owns which account, from a CSV `account_id,tenant_id,account_name`.

An account_name here is the account's display name and wins over any name a billing file gives
(`account_name_source = 'tenants'`); a row without one keeps the name the account has.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.sources.base import RowLimits
from costlake.sources.identifiers import id_problem
from costlake.tables import DIM_ACCOUNT

REQUIRED = ("account_id", "tenant_id")


def read_tenants(path: Path, limits: RowLimits | None = None) -> dict[str, tuple[str, str | None]]:
    """account_id → (tenant_id, account_name); every problem is reported with its row. Ids follow the
    billing files' identifier rule and a name is at most `limits.max_field_bytes` long, as in a billing
    file: the file is as untrusted as they are."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        # strict: a quote left open is an error, not a value that swallows the rest of the file
        reader = csv.DictReader(handle, strict=True)
        started = [1]  # the line the row being read starts on
        try:
            return _owners(path, reader, limits or RowLimits(), started)
        except csv.Error as exc:  # e.g. a field over the CSV reader's limit: one line, no traceback
            if str(exc) == "unexpected end of data":
                unclosed = 'a quoted value is never closed (a " left open)'
                raise InputError(f"{path}: line {started[0]}: {unclosed}; nothing loaded") from None
            raise InputError(f"{path}: line {started[0]}: {exc}; nothing loaded") from None
        except UnicodeDecodeError as exc:  # a Latin-1 or binary file, as a billing file would be told
            raise InputError(
                f"{path}: not a readable UTF-8 CSV file ({exc.reason}); save it as UTF-8"
            ) from None


def _owners(
    path: Path, reader: csv.DictReader[str], limits: RowLimits, started: list[int]
) -> dict[str, tuple[str, str | None]]:
    """The rows of `reader`; `started[0]` is kept at the line the next row starts on."""
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if dupes := sorted({c for c in header if header.count(c) > 1}):  # which one would win is a guess
        shown = ", ".join(repr(c[:40]) for c in dupes[:5])
        raise InputError(f"{path}: column(s) {shown} appear more than once in the header; nothing loaded")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            "expected account_id,tenant_id[,account_name]"
        )
    reader.fieldnames = header
    started[0] = reader.line_num + 1
    owners: dict[str, tuple[str, str | None]] = {}
    for row_number, row in enumerate(reader, start=1):
        if extra := row.get(None):  # type: ignore[call-overload,unused-ignore]  # fields past the header
            fields = len(header) + len(extra)
            raise InputError(
                f"{path}: row {row_number}: {fields} fields, the header names {len(header)} "
                "(a comma inside a value must be quoted); nothing loaded"
            )
        account = (row.get("account_id") or "").strip()
        tenant = (row.get("tenant_id") or "").strip()
        name = (row.get("account_name") or "").strip() or None
        for column, value in (("account_id", account), ("tenant_id", tenant)):
            if not value:
                raise InputError(f"{path}: row {row_number}, column {column}: empty value")
            # Ids are matched against billing files' account ids, sent in API headers, shown and given
            # to models: the billing files' identifier rule, so that no id carries text.
            if problem := id_problem(value):
                raise InputError(f"{path}: row {row_number}, column {column}: {problem}")
        if name is not None and len(name.encode()) > limits.max_field_bytes:
            raise InputError(
                f"{path}: row {row_number}, column account_name: {len(name.encode())} bytes, over the "
                f"{limits.max_field_bytes} of a field (setting max_field_bytes)"
            )
        if account in owners and owners[account][0] != tenant:
            raise InputError(
                f"{path}: row {row_number}, column tenant_id: account {account} is already "
                f"assigned to {owners[account][0]}"
            )
        owners[account] = (tenant, name)
        started[0] = reader.line_num + 1
    return owners


def _named(name: str) -> dict[str, object]:
    """The name columns of an account named by a tenants file."""
    return {"account_name": name, "account_name_source": "tenants", "account_name_date": None}


def load_tenants(wh: Warehouse, path: Path) -> tuple[int, int]:
    """Upsert the owners into dim_account. Returns (accounts updated, accounts added)."""
    owners = read_tenants(path, RowLimits(max_field_bytes=wh.settings.max_field_bytes))
    wh.ensure_tables()
    with wh.writer("tenants load"):
        wh.refresh()
        current = wh.read_rows(DIM_ACCOUNT).to_pylist()
        updated = 0
        for row in current:
            owner = owners.pop(row["account_id"], None)
            if owner is not None:
                row["tenant_id"] = owner[0]
                if owner[1]:  # a tenants file's name wins over a billing file's (pipeline/dimensions.py)
                    row |= _named(owner[1])
                updated += 1
        added = [
            {"account_id": account, "tenant_id": tenant, **(_named(name) if name else {})}
            for account, (tenant, name) in sorted(owners.items())
        ]
        rows = sorted(current + added, key=lambda r: r["account_id"])
        table = pa.Table.from_pylist(rows, schema=DIM_ACCOUNT.arrow_schema())
        # Keep the dimension's batch watermark: loading owners folds in no raw rows.
        props = {k: v for k, v in wh.last_properties(DIM_ACCOUNT).items() if k == "batch_seq"}
        wh.overwrite_rows(DIM_ACCOUNT, table, props | {"tenants_file": str(path.resolve())})
    return updated, len(added)
