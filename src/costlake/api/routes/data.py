"""GET /anomalies, /costs/daily and /accounts: the tenant's published rows, exact decimals as
strings, in pages with opaque cursors (`cursors.py`); `?format=csv` gives the same rows as CSV, with
every text cell a spreadsheet would run as a formula neutralised (text/csv_cells.py). The CSV's next
page is in the `X-Next-Cursor` header."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import JSONResponse, Response

from costlake.api.auth import Caller, caller, own_account
from costlake.api.cursors import query_digest
from costlake.api.limits import ACCOUNT_ID_CHARS, CURSOR_CHARS, SERVICE_CHARS
from costlake.api.problems import EARLIEST, LATEST, TENANT_ERRORS, Problem, documented
from costlake.catalog import readers
from costlake.catalog.filters import MAX_IMPACT, MAX_LIMIT, AnomalyFilters, DailyCostFilters, Page
from costlake.rag.chunks import chunk_id_for
from costlake.text.csv_cells import neutralise_cell

router = APIRouter(tags=["data"])
Format = Literal["json", "csv"]
KINDS = Literal["spike", "dip", "step_up", "step_down", "new_service", "dropped_to_zero", "mix_shift"]


class Contributor(BaseModel):
    dimension: str
    value: str
    actual_usd: str
    expected_usd: str
    contribution_usd: str


class AnomalyOut(BaseModel):
    account_id: str
    service_name: str
    usage_date: dt.date
    method: str
    kind: str
    direction: str
    actual_usd: str
    expected_usd: str
    expected_low_usd: str | None
    expected_high_usd: str | None
    impact_usd: str
    impact_pct: str | None
    score: str | None
    duration_days: int | None
    ongoing: bool | None
    history_days: int | None
    top_dimension: str | None
    top_value: str | None
    top_contribution_usd: str | None
    contributors: list[Contributor]


class DailyCostOut(BaseModel):
    usage_date: dt.date
    account_id: str | None = Field(description="with group_by=account; null with group_by=service")
    service_name: str | None = Field(description="with group_by=service; null with group_by=account")
    cost_usd: str
    event_count: int
    data_complete: bool


class AccountOut(BaseModel):
    account_id: str
    account_name: str | None
    first_usage_date: dt.date | None
    last_usage_date: dt.date | None


class AnomalyPage(BaseModel):
    data: list[AnomalyOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: no more rows")


class DailyCostPage(BaseModel):
    data: list[DailyCostOut]
    next_cursor: str | None


class AccountList(BaseModel):
    data: list[AccountOut]


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")]
Cursor = Annotated[
    str | None, Query(max_length=CURSOR_CHARS, description="`next_cursor` of the page before.")
]
From = Annotated[
    dt.date | None,
    Query(alias="from", ge=EARLIEST, le=LATEST, description="First usage day (inclusive)."),
]
To = Annotated[
    dt.date | None, Query(alias="to", ge=EARLIEST, le=LATEST, description="Last usage day (inclusive).")
]
AccountId = Annotated[
    str | None, Query(max_length=ACCOUNT_ID_CHARS, description="One of the tenant's accounts.")
]
Service = Annotated[str | None, Query(max_length=SERVICE_CHARS, description="One service, e.g. AmazonEC2.")]
GroupBy = Annotated[Literal["account", "service"], Query(description="A row per day and account or service.")]
CostKind = Annotated[Literal["billed", "effective"], Query(description="Billed or amortised cost.")]
Fmt = Annotated[Format, Query(alias="format", description="json, or csv for the same rows as CSV.")]
CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}}  # ?format=csv; next page in X-Next-Cursor


@dataclass(frozen=True)
class Listing:
    """What every listing takes: the window, one account, one service, the page, the format."""

    date_from: dt.date | None
    date_to: dt.date | None
    account_id: str | None
    service: str | None
    limit: int
    cursor: str | None
    fmt: Format


def listing(
    date_from: From = None,
    date_to: To = None,
    account_id: AccountId = None,
    service: Service = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: Fmt = "json",
) -> Listing:
    return Listing(date_from, date_to, account_id, service, limit, cursor, fmt)


PAGED_ERRORS = documented(
    TENANT_ERRORS
    | {400: "an admin key without X-Costlake-Tenant, or a cursor not made by this query for this tenant"}
)


@router.get(
    "/anomalies",
    response_model=AnomalyPage,
    summary="The tenant's detected anomalies",
    responses={200: CSV, **PAGED_ERRORS},
)
def anomalies(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    asked: Annotated[Listing, Depends(listing)],
    kind: Annotated[KINDS | None, Query(description="One kind of anomaly.")] = None,
    min_impact: Annotated[
        Decimal | None,
        Query(ge=0, lt=MAX_IMPACT, decimal_places=12, description="Least dollar impact, up or down."),
    ] = None,
    sort: Annotated[Literal["date", "-date", "-impact"], Query(description="Order of the rows.")] = "date",
) -> Response:
    filters, digest, page = _filters_and_page(
        request, who, f"anomalies/{sort}", AnomalyFilters, asked, kind=kind, min_impact=min_impact
    )
    found = readers.anomalies(who.wh, who.tenant, filters, page, sort)
    rows = [_anomaly(a) for a in found.rows]
    return _answer(request, who, digest, rows, found.next, asked.fmt, _ANOMALY_CSV)


@router.get(
    "/costs/daily",
    response_model=DailyCostPage,
    summary="The tenant's cost per day",
    responses={200: CSV, **PAGED_ERRORS},
)
def daily_costs(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    asked: Annotated[Listing, Depends(listing)],
    group_by: GroupBy = "account",
    cost: CostKind = "billed",
) -> Response:
    filters, digest, page = _filters_and_page(
        request, who, "costs/daily", DailyCostFilters, asked, group_by=group_by, cost=cost
    )
    found = readers.daily_costs(who.wh, who.tenant, filters, page)
    rows = [_plain(dataclasses.asdict(d)) for d in found.rows]
    return _answer(request, who, digest, rows, found.next, asked.fmt, _DAILY_CSV)


@router.get(
    "/accounts",
    response_model=AccountList,
    summary="The tenant's own accounts",
    responses=documented(TENANT_ERRORS),
)
def accounts(who: Annotated[Caller, Depends(caller)]) -> Response:
    rows = [
        _plain({k: getattr(a, k) for k in AccountOut.model_fields})
        for a in readers.accounts(who.wh, who.tenant)
    ]
    return JSONResponse({"data": rows})


def _filters(model: Any, **given: Any) -> Any:
    try:
        return model(**given)
    except ValidationError as exc:  # e.g. from after to: a 422 naming the fields, like FastAPI's own
        problems = [
            {
                "field": "query." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "query",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise Problem(422, "validation", detail, errors=problems) from None


def _filters_and_page(
    request: Request, who: Caller, route: str, model: Any, asked: Listing, **more: Any
) -> tuple[Any, str, Page]:
    """The filters of a listing (404 for an account the tenant does not own, 422 for a window that
    makes no sense), the digest its cursors are bound to (route, sort and every filter), its page."""
    own_account(who, asked.account_id)
    window = {"date_from": asked.date_from, "date_to": asked.date_to}
    filters = _filters(model, **window, account_id=asked.account_id, service=asked.service, **more)
    digest = query_digest(route, filters.model_dump(mode="json"))
    after = request.app.state.cursors.open(asked.cursor, who.tenant, digest) if asked.cursor else None
    return filters, digest, Page(limit=asked.limit, after=after)


def _answer(
    request: Request,
    who: Caller,
    digest: str,
    rows: list[dict[str, Any]],
    position: str | None,
    fmt: Format,
    columns: Sequence[str],
) -> Response:
    cursor = request.app.state.cursors.seal(who.tenant, digest, position) if position else None
    if fmt == "csv":
        headers = {"X-Next-Cursor": cursor} if cursor else {}
        return Response(_csv(rows, columns), media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse({"data": rows, "next_cursor": cursor})


def _anomaly(a: readers.Anomaly) -> dict[str, Any]:
    row = {f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f.name != "contributors"}
    row["contributors"] = [_plain(dataclasses.asdict(c)) for c in a.contributors]
    row["chunk_id"] = chunk_id_for(a.account_id, a.service_name, a.usage_date, a.method)  # as citations
    return _plain(row)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Decimals as strings (exact), dates as ISO 8601."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = format(value, "f")  # never an exponent: "0.000000000000", not "0E-12"
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


_DAILY_CSV = [f.name for f in dataclasses.fields(readers.DailyCost)]
_ANOMALY_CSV = [f.name for f in dataclasses.fields(readers.Anomaly) if f.name != "contributors"]


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    # RFC 4180's CRLF: the writer then quotes any cell holding a CR or an LF, so no cell can end a row
    # early and start the next one with a formula.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else neutralise_cell(row.get(c)) for c in columns])
    return buffer.getvalue()
