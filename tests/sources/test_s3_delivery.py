"""`ingest --manifest s3://…`: an export's delivery read straight from S3 (moto's server on 127.0.0.1,
started by the test), its files named by their URIs; a manifest that lists anything outside its
delivery's prefix, or in another bucket, is refused before any data file is downloaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from billing_sums import CUR, cur_totals, published
from costlake.errors import InputError
from costlake.lake.batches import registered_batches
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.sources import s3_delivery
from costlake.sources.s3_delivery import HEADROOM, fetch_delivery
from cur_exports import PERIOD, gzip_parts
from helpers import cli
from moto_s3 import moto_endpoint, s3_with_bucket

BUCKET = "billing-exports"
FOLDER = f"billing/my-report/{PERIOD}"
MANIFEST = f"{FOLDER}/my-report-Manifest.json"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    with moto_endpoint() as endpoint:
        client = s3_with_bucket(monkeypatch, endpoint, BUCKET)
        monkeypatch.setenv("COSTLAKE_S3_ENDPOINT", endpoint)
        yield client


def upload_export(client: Any, tmp_path: Path, extra_keys: list[str] | None = None) -> list[str]:
    """The CUR sample as a delivery of two gzip parts in the update asm-1, with its manifest."""
    parts = gzip_parts(tmp_path / "parts", "my-report")
    keys = [f"{FOLDER}/asm-1/{p.name}" for p in parts]
    for part, key in zip(parts, keys, strict=True):
        client.put_object(Bucket=BUCKET, Key=key, Body=part.read_bytes())
    body = {"assemblyId": "asm-1", "bucket": BUCKET, "reportKeys": keys + (extra_keys or [])}
    client.put_object(Bucket=BUCKET, Key=MANIFEST, Body=json.dumps(body).encode())
    return keys


def test_a_cur_delivery_is_ingested_from_s3_and_named_by_its_uris(s3: Any, tmp_path: Path) -> None:
    keys = upload_export(s3, tmp_path)
    root = tmp_path / "wh"
    got = cli(root, "ingest", "--manifest", f"s3://{BUCKET}/{MANIFEST}")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].startswith(f"s3://{BUCKET}/{MANIFEST}: CUR manifest, delivery asm-1: 2 data file(s)")
    uris = [f"s3://{BUCKET}/{key}" for key in keys]
    assert [line.split(": batch ")[0] for line in lines[1:]] == uris
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == cur_totals(CUR)
    batches = registered_batches(wh)
    assert [b.source_file for b in batches] == uris and {b.delivery_group for b in batches} == {1}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("billing/secret.csv", "is not in the delivery's folder s3://billing-exports/billing/my-report/"),
        (f"billing/other-report/{PERIOD}/asm-1/x.csv.gz", "is not in the delivery's folder"),
        (f"{FOLDER}/../../secret.csv", "cannot be a file of this delivery"),
        (f"{FOLDER}/asm-1/missing.csv.gz", "no such object"),
    ],
)
def test_a_manifest_listing_what_is_not_its_delivery_is_refused_in_one_line(
    s3: Any, tmp_path: Path, extra: str, message: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key="billing/secret.csv", Body=b"not billing data\n")
    upload_export(s3, tmp_path, [extra])
    root = tmp_path / "wh"
    got = cli(root, "ingest", "--manifest", f"s3://{BUCKET}/{MANIFEST}")
    assert got.returncode == 1 and message in got.stderr, got.stderr
    assert len(got.stderr.strip().splitlines()) == 1 and "Traceback" not in got.stderr
    assert not root.exists()  # nothing ingested: the warehouse was not even opened


def test_data_exports_objects_must_be_in_the_manifest_s_bucket(s3: Any, tmp_path: Path) -> None:
    key = "cur2/my-export/metadata/BILLING_PERIOD=2024-01/my-export-Manifest.json"
    other = "s3://another-bucket/cur2/my-export/data/BILLING_PERIOD=2024-01/x.csv.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"dataFiles": [other]}).encode())
    got = cli(tmp_path / "wh", "ingest", "--manifest", f"s3://{BUCKET}/{key}")
    assert got.returncode == 1 and f"'{other}' is not in the delivery's folder" in got.stderr, got.stderr


def test_a_missing_manifest_or_bucket_is_one_line(s3: Any, tmp_path: Path) -> None:
    for uri, message in [
        (f"s3://{BUCKET}/{MANIFEST}", "no such object"),
        (f"s3://no-such-bucket/{MANIFEST}", "no such bucket"),
        (f"s3://{BUCKET}", "not the s3:// URI of a manifest"),
    ]:
        got = cli(tmp_path / "wh", "ingest", "--manifest", uri)
        assert got.returncode == 1 and message in got.stderr, (uri, got.stderr)
        assert len(got.stderr.strip().splitlines()) == 1


def test_an_update_s_copy_from_s3_warns_when_the_period_names_another(s3: Any, tmp_path: Path) -> None:
    upload_export(s3, tmp_path)
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=MANIFEST)["Body"].read())
    copy = f"{FOLDER}/asm-1/my-report-Manifest.json"
    s3.put_object(Bucket=BUCKET, Key=copy, Body=json.dumps(body).encode())
    s3.put_object(Bucket=BUCKET, Key=MANIFEST, Body=json.dumps({**body, "assemblyId": "asm-2"}).encode())
    got = cli(tmp_path / "wh", "ingest", "--manifest", f"s3://{BUCKET}/{copy}")
    assert got.returncode == 0 and "names update asm-2" in got.stderr, got.stderr


def test_an_error_in_a_downloaded_file_names_its_uri(s3: Any, tmp_path: Path) -> None:
    keys = upload_export(s3, tmp_path)
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=b"not,a,billing,file\n1,2,3,4\n")
    got = cli(tmp_path / "wh", "ingest", "--manifest", f"s3://{BUCKET}/{MANIFEST}")
    assert got.returncode == 1, got.stderr
    assert got.stderr.startswith(f"error: s3://{BUCKET}/{keys[1]}: "), got.stderr
    assert "costlake-s3-" not in got.stderr and len(got.stderr.strip().splitlines()) == 1


def test_a_manifest_where_aws_writes_none_or_a_key_naming_the_period_twice_is_refused(
    s3: Any, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=PERIOD)  # a bucket named like a billing period: its root is no period folder
    body = json.dumps({"reportKeys": ["x"]}).encode()
    s3.put_object(Bucket=PERIOD, Key="my-report-Manifest.json", Body=body)
    got = cli(tmp_path / "wh", "ingest", "--manifest", f"s3://{PERIOD}/my-report-Manifest.json")
    assert got.returncode == 1 and "where AWS does not write one" in got.stderr, got.stderr
    twice = f"{FOLDER}/my-report/{PERIOD}/my-report-00001.csv.gz"
    upload_export(s3, tmp_path, [twice])
    got = cli(tmp_path / "wh", "ingest", "--manifest", f"s3://{BUCKET}/{MANIFEST}")
    assert got.returncode == 1 and "is not at its place in" in got.stderr, got.stderr


def test_every_part_is_asked_for_before_any_is_downloaded(s3: Any, tmp_path: Path) -> None:
    missing = f"{FOLDER}/asm-1/missing.csv.gz"
    upload_export(s3, tmp_path, [missing])  # listed last: the two real parts come first
    into = tmp_path / "scratch"
    with pytest.raises(InputError, match=f"^s3://{BUCKET}/{missing}: no such object$"):
        fetch_delivery(f"s3://{BUCKET}/{MANIFEST}", s3, into)
    assert [p.name for p in into.rglob("*") if p.is_file()] == ["my-report-Manifest.json"]


def test_a_delivery_larger_than_the_free_disk_is_refused_before_downloading(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = upload_export(s3, tmp_path)
    need = sum(int(s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"]) for k in keys)
    into = tmp_path / "scratch"
    real = shutil.disk_usage(tmp_path)
    for free, refused in [(HEADROOM + need - 1, True), (HEADROOM + need, False)]:
        monkeypatch.setattr(s3_delivery.shutil, "disk_usage", lambda _, free=free: real._replace(free=free))
        shutil.rmtree(into, ignore_errors=True)
        if not refused:
            fetch_delivery(f"s3://{BUCKET}/{MANIFEST}", s3, into)
            assert len(list(into.rglob("*.csv.gz"))) == 2
            continue
        with pytest.raises(InputError) as caught:
            fetch_delivery(f"s3://{BUCKET}/{MANIFEST}", s3, into)
        kib = -(-need >> 10), -(-(need - 1) >> 10)
        assert str(caught.value) == (
            f"s3://{BUCKET}/{MANIFEST}: its 2 data file(s) hold {kib[0]} KiB, more than the {kib[1]} KiB "
            f"free for them where they would be downloaded ({tmp_path}); "
            "set TMPDIR to a folder on a larger disk"
        )
        assert not list(into.rglob("*.csv.gz"))
