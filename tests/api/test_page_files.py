"""The page's files: served with a strict Content-Security-Policy and the right types, only the shipped
files (a traversal or a missing file is the usual 404 problem), none in the OpenAPI document, and no
JavaScript that turns text into markup."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import requests

from api_server import Served
from costlake.api.routes.page import CSP, STATIC

STRICT = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Every way a string becomes markup (or code) in a page: none may appear in the shipped JavaScript.
SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*[\"']on"
    r"|createContextualFragment|DOMParser|srcdoc"
)


def test_the_page_and_its_files_carry_a_strict_policy_and_their_types(served: Served) -> None:
    for path, media_type in (
        ("/", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/static/app.css", "text/css"),
    ):
        response = served.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].split(";")[0] == media_type
        policy = response.headers["content-security-policy"]
        assert policy == STRICT
        assert "unsafe" not in policy and "http" not in policy and "*" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-cache"
    page = served.get("/").text
    assert '<script type="module" src="/static/app.js"></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page


def test_missing_files_and_traversals_are_404_problems(served: Served) -> None:
    for path in (
        "/static/nope.js",
        "/static/index.html",
        "/static/../pyproject.toml",
        "/static/..%2f..%2fapp.py",
        "/static/%2e%2e/routes/page.py",
        "/static/sub/app.js",
        "/static",
    ):
        response = served.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json"), path
        assert "Traceback" not in response.text
        if urlsplit(response.url).path.startswith("/static/"):  # the page's headers on every answer under it
            assert response.headers["content-security-policy"] == CSP, path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "no-referrer", path


def test_every_answer_of_the_page_carries_its_headers_a_refused_method_too(served: Served) -> None:
    """Found by a re-review: POST /static/app.js and HEAD / were 405s without the page's policy."""
    for method, path in (
        ("POST", "/static/app.js"),
        ("HEAD", "/"),
        ("DELETE", "/"),
        ("HEAD", "/static/app.js"),
    ):
        response = requests.request(method, served.url + path, timeout=30)
        assert response.status_code in (200, 404, 405), (method, path)
        assert response.headers["content-security-policy"] == CSP, (method, path)
        assert response.headers["x-content-type-options"] == "nosniff", (method, path)
    assert "content-security-policy" not in served.get("/openapi.json").headers  # the API's own answers


def test_the_page_is_not_in_the_openapi_document_and_series_is(served: Served) -> None:
    paths = served.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)
    assert "/series" in paths


def test_the_shipped_javascript_never_parses_text_as_markup() -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 3
    found = {p.name: SINKS.findall(p.read_text()) for p in scripts}
    assert found == {p.name: [] for p in scripts}
    assert SINKS.search("el.innerHTML = name") and SINKS.search("x.insertAdjacentHTML('beforeend', y)")


def test_every_shipped_file_is_package_data() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"costlake.api" = ["static/*"]' in pyproject
    assert {p.suffix for p in STATIC.iterdir()} <= {".html", ".js", ".css"}


def test_head_is_answered_wherever_get_is_without_a_body(served: Served) -> None:
    """HEAD was a 405 on every route, /health included, which monitors probe with HEAD (RFC 9110:
    wherever GET is answered, HEAD is too, with the same headers and no body)."""
    for path in ("/health", "/", "/static/app.js"):
        got, head = requests.get(served.url + path, timeout=30), requests.head(served.url + path, timeout=30)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
    assert requests.head(served.url + "/explain", timeout=30).status_code == 405  # POST only
