"""The page in a real browser: Debian's Chromium driven by Playwright against a real `costlake serve`
process on a small lake whose names are hostile (an account named as an <img> tag that would run
script, a service named as a spreadsheet formula). Tenant A signs in, sees only its accounts, picks an
anomaly, asks a question and follows a citation, downloads the CSV; tenant B sees only B's; a wrong
key shows an error. Screenshots go to $COSTLAKE_TEST_ARTIFACTS (else test-artifacts/browser/)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from api_server import free_port, wait_until_up
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.rag.indexer import build_index
from costlake.settings import Settings
from helpers import cli, engine_options, ingest_and_run
from two_tenants import A1, A2, B1, START, two_tenant_rows, write_bill

HOSTILE_ACCOUNT = '<img src=x onerror="window.__pwned=1">'
FORMULA_SERVICE = '=HYPERLINK("http://evil.example","x")'
FORMULA_STORED = FORMULA_SERVICE.lower()  # service names are published trimmed and lower-cased
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
FLAGS += ["--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(
    os.environ.get("COSTLAKE_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts/browser"
)


def _hostile_rows() -> list[list[str]]:
    """A's account A1 also runs the formula-named service, with a spike on day 36."""
    rows = []
    for i in range(45):
        day = (START + dt.timedelta(days=i)).isoformat()
        cost = Decimal(40 * 6 if i == 36 else 40 + (i * 3) % 4)
        rows.append([f"f-{i}", day, A1, FORMULA_SERVICE, str(cost), str(cost), "us-east-1", "on_demand", day])
    return rows


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    process: subprocess.Popen[str]
    wh: Warehouse = field(repr=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("page")
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), **engine_options("duckdb")))
    ingest_and_run(wh, write_bill(folder / "bill.csv", two_tenant_rows() + _hostile_rows()))
    tenants = folder / "tenants.csv"
    with tenants.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["account_id", "tenant_id", "account_name"])
        writer.writerows(
            [[A1, "team-a", HOSTILE_ACCOUNT], [A2, "team-a", "a-storage"], [B1, "team-b", "b-db"]]
        )
    load_tenants(wh, tenants)
    build_index(wh)
    keys = {}
    for tenant in ("team-a", "team-b"):
        added = cli(wh.root, "tenants", "add-key", tenant)
        assert added.returncode == 0, added.stderr
        keys[tenant] = added.stdout.strip().splitlines()[-1]
    port = free_port()
    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh.root), "serve", "--port", str(port)]
    log = folder / "serve.log"  # a file, not a pipe: a pipe nobody reads would stall the server's log
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log.read_text)
        yield Server(url, keys, process, wh)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert "Traceback" not in log.read_text()


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("the browser test needs Chromium: run `make chromium`", pytrace=False)
    return found


@dataclass
class Watch:
    """What a page did that it must not: console errors (a CSP violation is one), uncaught errors,
    requests to any origin but the server's."""

    origin: str
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("request", self._request)

    def refused(self, status: int) -> int:
        """How many requests the browser reported as answered with `status` (each an expected problem,
        taken off the list)."""
        line = f"error: Failed to load resource: the server responded with a status of {status} "
        kept = [p for p in self.problems if not p.startswith(line)]
        found, self.problems[:] = len(self.problems) - len(kept), kept
        return found

    def _request(self, request: Any) -> None:
        if not (request.url.startswith(self.origin + "/") or request.url.startswith("blob:" + self.origin)):
            self.problems.append(f"request to {request.url}")


def _shot(page: Any, name: str) -> None:
    """The window from the top (name.png, small enough for the README) and the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    for path, full in ((ARTIFACTS / f"{name}.png", False), (ARTIFACTS / f"{name}-full.png", True)):
        page.screenshot(path=str(path), full_page=full)
        print(f"screenshot: {path}")


def _sign_in(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.click("#sign-in button[type=submit]")


@pytest.mark.slow
def test_the_page_in_chromium_shows_each_tenant_its_own_data_as_text(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=FLAGS)
        try:
            _tenant_a(browser, server, expect)
            _tenant_b(browser, server, expect)
        finally:
            browser.close()


def _tenant_a(browser: Any, server: Server, expect: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    page.goto(server.url + "/")
    _sign_in(page, "ключ")  # not a header value: refused by the page, never stored or sent
    expect(page.locator("#alert")).to_contain_text("That is not a costlake key")
    assert page.evaluate("sessionStorage.length") == 0
    _sign_in(page, "not-a-key")
    expect(page.locator("#alert")).to_contain_text("That key was not accepted")
    expect(page.locator("#sign-in")).to_be_visible()
    assert watch.refused(401) == 1 and watch.problems == []  # the browser's line for the refused key

    _sign_in(page, server.keys["team-a"])
    rows = page.locator("#anomaly-rows tr")
    expect(rows.first).to_be_visible()
    text = page.locator("body").inner_text()
    assert A1 in text and A2 in text and B1 not in text and "b-db" not in text
    assert HOSTILE_ACCOUNT in page.locator("#who").inner_text()  # the name, shown as the literal text
    assert FORMULA_STORED in page.locator("#anomaly-rows").inner_text()

    row = page.locator("#anomaly-rows tr", has_text=FORMULA_STORED).first
    row.click()
    expect(page.locator("#series svg polygon.band")).to_have_count(1)
    expect(page.locator("#series-title")).to_contain_text(FORMULA_STORED)
    expect(page.locator("#trend svg rect").first).to_be_attached()
    expect(page.locator("#trend svg .marker").first).to_be_attached()

    _keyboard_picks_a_row(page, expect)
    _sort_filter_and_stack(page, expect)
    assert watch.refused(422) == 2  # the window the API refused, for the costs and the anomalies
    _ask_and_follow_a_citation(page, expect)
    _download_csv(page)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("[...document.images].filter(i => i.getAttribute('src') === 'x').length") == 0
    _shot(page, "dashboard")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#anomaly-table")).to_be_visible()
    expect(page.locator("#trend svg")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _shot(page, "dashboard-phone")
    assert watch.problems == []
    _next_tenant_in_the_same_tab(page, server, expect)
    context.close()


def _next_tenant_in_the_same_tab(page: Any, server: Server, expect: Any) -> None:
    """After sign-out, the next key in the same tab sees nothing of the last tenant: not the chosen
    series, the question typed, the account list nor an answer still on its way."""
    page.fill("#question", "why did ec2 spend jump?")
    with page.expect_navigation():  # signing out reloads the page
        page.click("#sign-out")
    expect(page.locator("#key")).to_be_focused()  # the reloaded page's script ran (it resets forms)
    _sign_in(page, server.keys["team-b"])
    expect(page.locator("#anomaly-rows tr").first).to_be_visible()
    text = page.locator("body").inner_text()
    assert A1 not in text and FORMULA_STORED not in text and "onerror" not in text
    assert page.input_value("#question") == ""
    options = page.evaluate("[...document.querySelectorAll('#f-account option')].map(o => o.value)")
    assert A1 not in options and B1 in options


def _keyboard_picks_a_row(page: Any, expect: Any) -> None:
    other = page.locator("#anomaly-rows tr", has_text="amazonec2").first
    other.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#series-title")).to_contain_text("amazonec2")
    expect(other).to_have_class("dir-up picked")


def _sort_filter_and_stack(page: Any, expect: Any) -> None:
    impact = page.locator("#anomaly-head th", has_text="Impact")
    rows = page.locator("#anomaly-rows tr")
    impact.locator("button").click()
    expect(impact).to_have_attribute("aria-sort", "descending")
    expect(rows.first).to_contain_text("$1,197.50")
    impact.locator("button").click()
    expect(impact).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_contain_text(FORMULA_STORED)
    expect(page.locator("#anomaly-rows tr.picked")).to_contain_text("amazonec2")  # still the chosen one
    page.fill("#f-from", "2025-02-10")
    page.fill("#f-to", "2025-02-01")
    page.click("#filters button[type=submit]")  # a window the API refuses: its problem, in the alert
    expect(page.locator("#alert")).to_contain_text("Unprocessable Content")
    expect(rows).to_have_count(2)  # what was shown stays
    page.fill("#f-to", "")
    page.fill("#f-from", "2025-02-05")
    page.click("#filters button[type=submit]")
    expect(page.locator("#alert")).to_be_hidden()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("2025-02-06")
    page.select_option("#f-service", "amazonec2")
    page.click("#filters button[type=submit]")
    expect(page.locator("#anomaly-count")).to_have_text("0 anomalies in this view")
    page.fill("#f-from", "")
    page.select_option("#f-service", "")
    page.click("#filters button[type=submit]")
    expect(rows).to_have_count(2)
    page.select_option("#group-by", "account")
    expect(page.locator("#trend-legend")).to_contain_text(HOSTILE_ACCOUNT)
    expect(page.locator("#trend-legend")).to_contain_text("a-storage")
    page.select_option("#group-by", "service")
    expect(page.locator("#trend-legend")).to_contain_text(FORMULA_STORED)


def _ask_and_follow_a_citation(page: Any, expect: Any) -> None:
    page.fill("#question", "why did ec2 spend jump?")
    page.click("#ask button[type=submit]")
    cite = page.locator("#answer button.cite").first
    expect(cite).to_be_visible()
    assert page.locator("#answer .explanation").inner_text().strip()
    page.locator("#series-title").evaluate("e => { e.textContent = '' }")
    cite.click()
    picked = page.locator("#anomaly-rows tr.picked")
    expect(picked).to_have_count(1)
    expect(picked).to_be_focused()
    expect(page.locator("#series-title")).not_to_have_text("")
    # A citation whose service name is withheld (shown by its label) links to its row all the same.
    spike = (START + dt.timedelta(days=36)).isoformat()
    page.fill("#question", f"why did spend jump on {spike}?")
    page.click("#ask button[type=submit]")
    withheld = page.locator("#answer button.cite", has_text="(name withheld)").first
    expect(withheld).to_be_visible()
    withheld.click()
    expect(picked).to_have_count(1)
    expect(picked).to_contain_text(FORMULA_STORED)
    expect(picked).to_contain_text(spike)


def _download_csv(page: Any) -> None:
    with page.expect_download() as info:
        page.click("#csv-anomalies")
    path = info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert rows and {r["account_id"] for r in rows} <= {A1, A2}
    formula = [r["service_name"] for r in rows if "hyperlink" in r["service_name"]]
    assert formula and all(s == "'" + FORMULA_STORED for s in formula)


def _tenant_b(browser: Any, server: Server, expect: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    page.goto(server.url + "/")
    _sign_in(page, server.keys["team-b"])
    expect(page.locator("#anomaly-rows tr").first).to_be_visible()
    text = page.locator("body").inner_text()
    assert B1 in text and "b-db" in text
    assert A1 not in text and A2 not in text and FORMULA_STORED not in text and "onerror" not in text
    _shot(page, "tenant-b")
    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert watch.problems == []
    context.close()
