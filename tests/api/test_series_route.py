"""GET /series: what `costlake plot` computes for one of the tenant's series, exact, tenant-scoped."""

from __future__ import annotations

from api_server import Served
from costlake.anomalies.detect import Params
from costlake.anomalies.plot import chart_for
from costlake.anomalies.series import load_series
from two_tenants import A1, B1

PROBLEM = "application/problem+json"


def _money(value: object) -> str | None:
    return None if value is None else format(value, "f")


def test_a_series_is_what_costlake_plot_computes_to_the_last_digit(served: Served) -> None:
    params = Params.from_settings(served.wh.settings)
    everything = load_series(served.wh)
    for service in ("amazonec2", None):
        asked = {"account_id": A1} | ({"service": service} if service else {})
        response = served.get("/series", served.keys["team-a"], params=asked)
        assert response.status_code == 200, response.text
        body = response.json()
        chart = chart_for(everything, A1, service, params)
        assert body["title"] == chart.title and body["service_name"] == service
        assert [d["usage_date"] for d in body["days"]] == [d.isoformat() for d in chart.days]
        assert [d["actual_usd"] for d in body["days"]] == [_money(v) for v in chart.actual]
        assert [d["expected_usd"] for d in body["days"]] == [_money(v) for v in chart.expected]
        assert [d["expected_low_usd"] for d in body["days"]] == [_money(v) for v in chart.low]
        assert [d["expected_high_usd"] for d in body["days"]] == [_money(v) for v in chart.high]
        assert any(d["expected_usd"] is None for d in body["days"])  # no band before enough history
        found = [(a["usage_date"], a["kind"], a["impact_usd"]) for a in body["anomalies"]]
        assert found == [(a["day"].isoformat(), a["kind"], _money(a["impact"])) for a in chart.anomalies]
        assert found  # the spike of A1's EC2


def test_another_tenants_account_is_the_same_404_as_a_missing_one(served: Served) -> None:
    key = served.keys["team-a"]
    theirs = served.get("/series", key, params={"account_id": B1})
    missing = served.get("/series", key, params={"account_id": "999999999999"})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"].startswith(PROBLEM)
    assert theirs.json() == missing.json()
    assert served.get("/series", served.keys["team-b"], params={"account_id": B1}).status_code == 200


def test_no_key_is_401_and_a_service_the_account_never_had_is_404(served: Served) -> None:
    assert served.get("/series", params={"account_id": A1}).status_code == 401
    unknown = served.get("/series", served.keys["team-a"], params={"account_id": A1, "service": "amazonrds"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(PROBLEM)
    assert unknown.json()["detail"] == "no such series"
    assert served.get("/series", served.keys["team-a"]).status_code == 422  # account_id is required


def test_filters_take_any_name_ingestion_accepts(served: Served) -> None:
    """A service name may be as long as a billing field (4,096 bytes) and an account id 128 characters:
    the routes ask for them instead of refusing the request."""
    key = served.keys["team-a"]
    long_service = {"account_id": A1, "service": "s" * 200}
    assert served.get("/series", key, params=long_service).status_code == 404  # asked, not refused
    assert served.get("/anomalies", key, params={"service": "s" * 200}).status_code == 200
    assert served.get("/costs/daily", key, params={"account_id": "9" * 128}).status_code == 404
    assert served.get("/series", key, params={"account_id": A1, "service": "s" * 4097}).status_code == 422
