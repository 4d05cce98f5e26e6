"""GET /series: one of the tenant's series as `costlake plot` charts it (anomalies/plot.py's
`chart_for`): the actual cost per complete day, the expected band where there is one, and the
anomalies of the chart. One account's series are read, not the whole lake."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from costlake.anomalies.detect import Params
from costlake.anomalies.plot import Chart, chart_for
from costlake.anomalies.series import load_series
from costlake.api.auth import Caller, caller, own_account
from costlake.api.limits import ACCOUNT_ID_CHARS, SERVICE_CHARS
from costlake.api.problems import TENANT_ERRORS, documented, not_found

router = APIRouter(tags=["data"])


class SeriesDay(BaseModel):
    usage_date: dt.date
    actual_usd: str
    expected_usd: str | None = Field(description="null where the series has too little history for a band")
    expected_low_usd: str | None
    expected_high_usd: str | None


class SeriesAnomaly(BaseModel):
    usage_date: dt.date
    service_name: str = Field(description="as the chart shows it (the name policy applied)")
    kind: str
    direction: str
    actual_usd: str
    expected_usd: str
    impact_usd: str
    top: str = Field(description="the top contributor, `dimension=value`, or empty")


class SeriesOut(BaseModel):
    account_id: str
    service_name: str | None = Field(description="null: every service of the account, summed")
    title: str
    days: list[SeriesDay]
    anomalies: list[SeriesAnomaly]


@router.get(
    "/series",
    response_model=SeriesOut,
    summary="One account's daily cost (or one service's) with its expected band and anomalies",
    responses=documented(TENANT_ERRORS | {404: "an account the key cannot see, or a service it never had"}),
)
def series(
    who: Annotated[Caller, Depends(caller)],
    account_id: Annotated[
        str, Query(max_length=ACCOUNT_ID_CHARS, description="One of the tenant's accounts.")
    ],
    service: Annotated[
        str | None,
        Query(max_length=SERVICE_CHARS, description="One service as published (e.g. amazonec2); none: all."),
    ] = None,
) -> Response:
    own_account(who, account_id)
    found = load_series(who.wh, account_id, service)
    if not found:  # a service the account never had, or an account with no complete day yet
        raise not_found("such series")
    chart = chart_for(found, account_id, service, Params.from_settings(who.wh.settings))
    return JSONResponse(_body(chart, account_id, service))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _body(chart: Chart, account_id: str, service: str | None) -> dict[str, Any]:
    days = [
        {
            "usage_date": day.isoformat(),
            "actual_usd": _money(actual),
            "expected_usd": _money(expected),
            "expected_low_usd": _money(low),
            "expected_high_usd": _money(high),
        }
        for day, actual, expected, low, high in zip(
            chart.days, chart.actual, chart.expected, chart.low, chart.high, strict=True
        )
    ]
    anomalies = [
        {
            "usage_date": a["day"].isoformat(),
            "service_name": a["service"],
            "kind": a["kind"],
            "direction": a["direction"],
            "actual_usd": _money(a["actual"]),
            "expected_usd": _money(a["expected"]),
            "impact_usd": _money(a["impact"]),
            "top": a["top"],
        }
        for a in chart.anomalies
    ]
    return {
        "account_id": account_id,
        "service_name": service,
        "title": chart.title,
        "days": days,
        "anomalies": anomalies,
    }
