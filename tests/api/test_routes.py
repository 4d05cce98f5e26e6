"""Every route over HTTP, each status code, and the tenant rules (docs/api.md)."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
from decimal import Decimal

import pytest

from api_server import Served
from costlake.catalog import readers
from costlake.rag.results import ExplainResult
from two_tenants import A1, A2, B1, C1

PROBLEM = "application/problem+json"
TEAM_A = {A1, A2}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_explain_answers_with_the_documented_fields_from_the_tenants_own_anomalies(served: Served) -> None:
    response = served.post("/explain", served.keys["team-a"], json={"query": "why did EC2 spend jump?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == set(ExplainResult.model_fields) - {"unsupported"}  # the documented fields
    assert body["retrieved_context_count"] == len(body["citations"]) >= 1
    assert {c["account_id"] for c in body["citations"]} <= TEAM_A
    team_b = served.post("/explain", served.keys["team-b"], json={"query": "why did EC2 spend jump?"}).json()
    assert {c["account_id"] for c in team_b["citations"]} <= {B1}


def test_explain_filters_narrow_the_answer_and_another_tenants_account_is_404(served: Served) -> None:
    key = served.keys["team-a"]
    body = {"query": "what changed?", "filters": {"account_id": A1, "from": "2025-01-01", "to": "2025-02-14"}}
    found = served.post("/explain", key, json=body).json()
    assert found["citations"] and {c["account_id"] for c in found["citations"]} == {A1}
    theirs = served.post("/explain", key, json={"query": "x", "filters": {"account_id": B1}})
    missing = served.post("/explain", key, json={"query": "x", "filters": {"account_id": "999999999999"}})
    assert _problem(theirs, 404) == _problem(missing, 404)


def test_missing_invalid_and_malformed_keys_are_401(served: Served) -> None:
    for key in (None, "nope", served.keys["team-a"][:-1] + "x", "clk_00000000_" + "a" * 43):
        response = served.get("/accounts", key)
        _problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert served.get("/accounts", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_two_keys_or_two_tenants_in_one_request_are_refused(served: Served) -> None:
    """Two Authorization headers were served for the first one: whichever a proxy put first."""
    host, port = served.url.removeprefix("http://").split(":")
    a, b, admin = (("Authorization", f"Bearer {served.keys[k]}") for k in ("team-a", "team-b", "admin"))
    for doubled in ([b, a], [admin, ("X-Costlake-Tenant", "team-a"), ("X-Costlake-Tenant", "team-b")]):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("GET", "/accounts")
        for name, value in doubled:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        assert response.status == 400 and body["detail"].startswith("send one "), body
        assert "team-a" not in json.dumps(body) and "team-b" not in json.dumps(body)


def test_a_trailing_slash_is_a_404_not_a_redirect_built_from_the_host_header(served: Served) -> None:
    key = served.keys["team-a"]
    response = served.get("/accounts/", key, headers={"Host": "evil.example"}, allow_redirects=False)
    assert _problem(response, 404) and "location" not in response.headers


def test_accounts_are_the_tenants_own(served: Served) -> None:
    found = served.get("/accounts", served.keys["team-a"]).json()["data"]
    assert {a["account_id"] for a in found} == TEAM_A
    unassigned = {"X-Costlake-Tenant": "unassigned"}  # no key is ever made for it; an operator may look
    found = served.get("/accounts", served.keys["admin"], headers=unassigned).json()["data"]
    assert {a["account_id"] for a in found} == {C1}


def test_admin_keys_act_for_the_tenant_they_name(served: Served) -> None:
    admin = served.keys["admin"]
    found = served.get("/accounts", admin, headers={"X-Costlake-Tenant": "team-b"}).json()["data"]
    assert [a["account_id"] for a in found] == [B1]
    _problem(served.get("/accounts", admin, headers={"X-Costlake-Tenant": "team-zz"}), 404)
    _problem(served.get("/accounts", admin), 400)
    # A tenant key naming another tenant reads like an unknown tenant; naming its own is fine.
    key = served.keys["team-a"]
    assert _problem(served.get("/accounts", key, headers={"X-Costlake-Tenant": "team-b"}), 404) == _problem(
        served.get("/accounts", admin, headers={"X-Costlake-Tenant": "team-zz"}), 404
    )
    assert served.get("/accounts", key, headers={"X-Costlake-Tenant": "team-a"}).status_code == 200


def test_another_tenants_account_reads_exactly_like_a_missing_one(served: Served) -> None:
    key = served.keys["team-a"]
    for route in ("/anomalies", "/costs/daily"):
        theirs = served.get(route, key, params={"account_id": B1})
        missing = served.get(route, key, params={"account_id": "999999999999"})
        assert _problem(theirs, 404) == _problem(missing, 404)
        assert B1 not in theirs.text


def test_anomalies_page_through_with_cursors_bound_to_tenant_and_query(served: Served) -> None:
    key = served.keys["team-a"]
    whole = served.get("/anomalies", key, params={"limit": 1000}).json()
    assert whole["next_cursor"] is None and whole["data"]
    assert {a["account_id"] for a in whole["data"]} <= TEAM_A
    assert all(isinstance(a["impact_usd"], str) for a in whole["data"])
    paged, cursor = [], None
    for _ in range(100):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = served.get("/anomalies", key, params=params).json()
        paged += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["data"]
    first = served.get("/anomalies", key, params={"limit": 1}).json()["next_cursor"]
    if first is not None:
        assert A1 not in first and "usage_date" not in first  # opaque
        _problem(served.get("/anomalies", served.keys["team-b"], params={"cursor": first}), 400)
        _problem(served.get("/anomalies", key, params={"cursor": first, "kind": "spike"}), 400)
        _problem(served.get("/anomalies", key, params={"cursor": first[:-3] + "abc"}), 400)
        assert served.get("/anomalies", key, params={"cursor": first, "limit": 5}).status_code == 200


def test_a_least_impact_that_no_impact_could_be_compared_with_is_422_not_500(served: Served) -> None:
    """DuckDB compares the bound with DECIMAL(38,12) impacts in one decimal type: a bound with more than
    12 places, or 26 digits before the point, did not fit it and gave a 500 (found by a review)."""
    key = served.keys["team-a"]
    rows = served.get("/anomalies", key).json()["data"]
    for bound in ("0.0000000000000000000000000000000000001", "123456789012345678901234567890.5", "-1"):
        problem = _problem(served.get("/anomalies", key, params={"min_impact": bound}), 422)
        assert "min_impact" in json.dumps(problem)
    kept = served.get("/anomalies", key, params={"min_impact": "0.000000000001"}).json()["data"]
    assert kept == [r for r in rows if abs(Decimal(r["impact_usd"])) >= Decimal("0.000000000001")]
    largest = served.get("/anomalies", key, params={"min_impact": "9" * 26}).json()["data"]
    assert largest == []


@pytest.mark.parametrize("sort", ["date", "-date", "-impact"])
def test_anomalies_sort_orders_and_page_through_in_each(served: Served, sort: str) -> None:
    key = served.keys["team-a"]
    rows = served.get("/anomalies", key, params={"sort": sort}).json()["data"]
    assert rows
    if sort == "-impact":
        sizes = [abs(Decimal(r["impact_usd"])) for r in rows]
        assert sizes == sorted(sizes, reverse=True)
    else:
        days = [r["usage_date"] for r in rows]
        assert days == sorted(days, reverse=sort == "-date")
    paged, cursor = [], None
    while True:
        params = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = served.get("/anomalies", key, params=params)
        assert page.status_code == 200, page.text
        paged += page.json()["data"]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert paged == rows


def test_daily_costs_are_exact_and_say_whether_each_day_is_complete(served: Served) -> None:
    key = served.keys["team-b"]
    rows = served.get("/costs/daily", key, params={"limit": 1000, "group_by": "service"}).json()["data"]
    assert rows and {r["account_id"] for r in rows} == {None}
    assert all(isinstance(r["data_complete"], bool) for r in rows)
    total = sum(Decimal(r["cost_usd"]) for r in rows)
    first, last = (dt.date.fromisoformat(rows[i]["usage_date"]) for i in (0, -1))
    spend = readers.spend(served.wh, "team-b", first, last)
    assert total == spend.total_usd  # exact, to the last digit
    effective = served.get("/costs/daily", key, params={"limit": 1000, "cost": "effective"}).json()["data"]
    assert sum(Decimal(r["cost_usd"]) for r in effective) < total


def test_csv_gives_the_same_rows(served: Served) -> None:
    key = served.keys["team-a"]
    params = {"limit": 3, "group_by": "account"}
    as_json = served.get("/costs/daily", key, params=params)
    as_csv = served.get("/costs/daily", key, params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["cost_usd"] for r in rows] == [r["cost_usd"] for r in as_json.json()["data"]]
    assert as_csv.headers.get("x-next-cursor")
    # A tenant's data is never kept by a cache on the way; the page's files are only revalidated.
    assert as_json.headers["cache-control"] == as_csv.headers["cache-control"] == "no-store"
    assert served.get("/").headers["cache-control"] == "no-cache"


def test_validation_errors_are_422_naming_the_field(served: Served) -> None:
    key = served.keys["team-a"]
    assert (
        _problem(served.get("/anomalies", key, params={"limit": 0}), 422)["errors"][0]["field"]
        == "query.limit"
    )
    body = _problem(served.post("/explain", key, json={"query": "why", "k": 500}), 422)
    assert body["errors"][0]["field"] == "body.k"
    assert (
        "from"
        in _problem(served.get("/costs/daily", key, params={"from": "2025-02-01", "to": "2025-01-01"}), 422)[
            "detail"
        ]
    )
    _problem(served.post("/explain", key, json={"query": ""}), 422)
    _problem(
        served.post("/explain", key, data=b"{not json", headers={"Content-Type": "application/json"}), 422
    )
    # Bodies the JSON parser refuses before any field is read: a 400 naming no field, never a 500.
    for unreadable in (
        b'{"query": "x\xff"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"query": "x", "k": ' + b"9" * 5000 + b"}",
    ):
        parsed = _problem(
            served.post("/explain", key, data=unreadable, headers={"Content-Type": "application/json"}), 400
        )
        assert parsed["type"].endswith("/http-error")


def test_bodies_and_headers_over_the_limits_are_refused(served: Served) -> None:
    key = served.keys["team-a"]
    _problem(served.post("/explain", key, json={"query": "x" * 100_000}), 413)
    body = json.dumps({"query": "x" * 100_000}).encode()
    chunked = served.post("/explain", key, data=(body[i : i + 8192] for i in range(0, len(body), 8192)))
    _problem(chunked, 413)  # no Content-Length: read up to the limit, then refused
    small = json.dumps({"query": "why did EC2 spend jump?"}).encode()
    assert served.post("/explain", key, data=iter([small[:10], small[10:]]),
                       headers={"Content-Type": "application/json"}).status_code == 200  # fmt: skip
    _problem(served.get("/accounts", key, headers={"X-Big": "y" * 20_000}), 431)


def test_health_docs_and_openapi_are_public_and_show_no_tenant_data(served: Served) -> None:
    health = served.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["index"]["reachable"] is True
    for account in (A1, A2, B1, C1):
        assert account not in health.text
    paths = served.get("/openapi.json").json()["paths"]
    assert served.get("/docs").status_code == 200
    # Every answer the service can give is in the document: the `busy` 503 of each data route, the
    # health check's 503 and the metrics token's 401.
    for route in ("/explain", "/costs/daily", "/anomalies", "/accounts", "/series"):
        verb = "post" if route == "/explain" else "get"
        assert {"400", "401", "404", "422", "429", "503"} <= set(paths[route][verb]["responses"]), route
    assert "503" in paths["/health"]["get"]["responses"]
    assert "401" in paths["/metrics"]["get"]["responses"]


def test_metrics_count_requests_by_route_template(served: Served) -> None:
    served.get("/anomalies", served.keys["team-a"], params={"account_id": A1})
    text = served.get("/metrics").text
    assert 'costlake_http_requests_total{method="GET",route="/anomalies",status="200"}' in text
    assert "costlake_http_request_duration_seconds_bucket" in text
    assert "costlake_explain_retrieval_seconds" in text
    assert A1 not in text and "team-a" not in text


def test_unknown_routes_and_methods_are_problems(served: Served) -> None:
    _problem(served.get("/nope"), 404)
    _problem(served.get("/explain", served.keys["team-a"]), 405)


def test_csv_cells_can_neither_run_nor_break_a_row() -> None:
    from costlake.api.routes.data import _csv

    hostile = ["=1+1", "\r=2+2", "\n=3+3", "@SUM(A1)", "a\r\n=4+4", "-12.5"]
    text = _csv([{"name": h, "cost_usd": "1.50"} for h in hostile], ["name", "cost_usd"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["name", "cost_usd"] and len(rows) == 1 + len(hostile)
    cells = [r[0] for r in rows[1:]]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert cells[-1] == "-12.5" and [r[1] for r in rows[1:]] == ["1.50"] * len(hostile)


def test_a_window_that_ends_before_it_starts_is_told_in_the_parameters_names(served: Served) -> None:
    """It said `date_from 2025-03-05 is after date_to 2025-03-01`, names no parameter has."""
    response = served.get("/anomalies?from=2025-03-05&to=2025-03-01", served.keys["team-a"])
    assert response.status_code in (400, 422)
    detail = json.dumps(response.json())
    assert "'from' (2025-03-05) is after 'to' (2025-03-01)" in detail and "date_from" not in detail


def test_a_service_filter_is_one_service_not_a_question(served: Served) -> None:
    """`filters.service` went through the question parser: "amazonec2 OR 1=1" and "amazonec2,
    amazons3" were read as the services they mention. Now a name alone ("ec2" too) is that service,
    and anything more is the name as given, which no service has: nothing matches it, and the answer
    says so before it lists the nearest anomalies."""
    key = served.keys["team-a"]

    def answer(service: str) -> dict:
        body = {"query": "what changed?", "k": 20, "filters": {"service": service}}
        response = served.post("/explain", key, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    for name in ("ec2", "AmazonEC2"):
        found = answer(name)
        assert {c["service_name"] for c in found["citations"]} == {"amazonec2"}
        assert not found["explanation"].startswith("No anomaly matched")
    for padded in ("amazonec2 OR 1=1", "amazonec2, amazons3", "ec2 and rds"):
        assert answer(padded)["explanation"].startswith("No anomaly matched"), padded
