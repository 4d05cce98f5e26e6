"""Series in exact decimals for the readers of one account's or every series (the charts, the API's
series route, the evaluation and the tests' reference analysis), read without loading the rest of
the lake."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pyarrow as pa

from costlake.anomalies.analyse import ServiceSeries
from costlake.anomalies.frame import exact_series, series_keys
from costlake.lake.warehouse import Warehouse
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED

__all__ = ["load_series"]


def load_series(
    wh: Warehouse, account_id: str | None = None, service: str | None = None
) -> list[ServiceSeries]:
    """Every (account, service) series over its account's span of complete days, in exact decimals
    (the evaluation's and the tests' reference input); with `account_id` only that account's series
    (and with `service` only that one), read without loading the rest of the lake."""
    from costlake.catalog.views import open_lake

    con = open_lake(wh, tables=[ACCOUNT_SERVICE_DAY.name, NORMALIZED.name, DAILY_ACCOUNT.name])
    try:
        scope = None if account_id is None else _account_scope(con, account_id, service)
        keys = series_keys(con, scope)
        first = {(r["account_id"], r["service_name"]): r["first_day"] for r in keys.to_pylist()}
        found = exact_series(con, keys)
        return [ServiceSeries(a, s, first[(a, s)], *found[(a, s)]) for a, s in sorted(found)]
    finally:
        con.close()


def _account_scope(con: duckdb.DuckDBPyConnection, account_id: str, service: str | None) -> pa.Table:
    """(account_id, service_name, from_day) of one account's series (one of them with `service`), each
    from its start: `series_keys` clips `from_day` to the account's first complete day."""
    where = "account_id = $account" + (" AND service_name = $service" if service is not None else "")
    params: dict[str, Any] = {"account": account_id} | ({"service": service} if service is not None else {})
    rows = con.execute(
        f"SELECT DISTINCT service_name FROM account_service_day_cost WHERE {where} ORDER BY 1", params
    ).fetchall()
    services = [r[0] for r in rows]
    return pa.table(
        {
            "account_id": pa.array([account_id] * len(services), pa.string()),
            "service_name": pa.array(services, pa.string()),
            "from_day": pa.array([dt.date(1900, 1, 1)] * len(services), pa.date32()),
        }
    )
