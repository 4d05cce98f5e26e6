"""`ingest --manifest`: the data files an AWS export manifest lists (a CUR's reportKeys, a Data Exports
manifest's dataFiles), found in a local copy of the export and ingested as one delivery; a manifest
is untrusted, so a key is only looked for inside the export's own folder, and a manifest that cannot
be used is refused in one line before anything is ingested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_sums import CUR, cur_totals, published
from costlake.errors import InputError
from costlake.lake.batches import registered_batches
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.sources import manifest as manifests
from costlake.sources.manifest import DATA_EXPORTS, read_manifest
from cur_exports import PERIOD, gzip_parts
from helpers import cli


def cur_export(root: Path) -> tuple[Path, list[Path]]:
    """A legacy CUR delivery as `aws s3 sync` of its prefix copies it: the manifest in the period's
    folder, the parts in the update's assemblyId folder; keys are the bucket's, prefix included."""
    folder = root / "billing" / "my-report" / PERIOD
    parts = gzip_parts(folder / "asm-1", "my-report")
    keys = [f"billing/my-report/{PERIOD}/asm-1/{p.name}" for p in parts]
    body = {
        "assemblyId": "asm-1",
        "billingPeriod": {"start": "20240101T000000.000Z", "end": "20240201T000000.000Z"},
        "bucket": "my-bucket",
        "reportKeys": keys,
    }
    path = folder / "my-report-Manifest.json"
    path.write_text(json.dumps(body))
    return path, parts


def test_a_cur_manifest_ingests_its_report_keys_as_one_delivery(tmp_path: Path) -> None:
    """Every part counts (the published money is the whole file's, to the cent), all parts are one
    delivery, and the same manifest again ingests nothing."""
    path, parts = cur_export(tmp_path / "copy")
    root = tmp_path / "wh"
    got = cli(root, "ingest", "--manifest", str(path))
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == (
        f"{path}: CUR manifest, delivery asm-1, billing period 20240101T000000.000Z to "
        "20240201T000000.000Z: 2 data file(s)"
    )
    assert [line.split(":")[0] for line in lines[1:]] == [str(p) for p in parts]
    again = cli(root, "ingest", "--manifest", str(path))
    assert again.returncode == 0 and again.stdout.count("nothing to do") == 2, again.stdout
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == cur_totals(CUR)
    assert [b.delivery_group for b in registered_batches(wh)] == [1, 1]


def test_a_data_exports_manifest_finds_its_files_under_the_export_folder(tmp_path: Path) -> None:
    export = tmp_path / "copy" / "cur2" / "my-export"
    parts = gzip_parts(export / "data" / "BILLING_PERIOD=2024-01", "my-export")
    path = export / "metadata" / "BILLING_PERIOD=2024-01" / "my-export-Manifest.json"
    path.parent.mkdir(parents=True)
    uris = [f"s3://my-bucket/cur2/my-export/data/BILLING_PERIOD=2024-01/{p.name}" for p in parts]
    path.write_text(json.dumps({"executionId": "exec-7", "dataFiles": uris, "bucket": "my-bucket"}))
    found = read_manifest(path)
    assert (found.kind, found.delivery, found.period, found.files) == (
        DATA_EXPORTS,
        "exec-7",
        "2024-01",
        parts,
    )


def test_a_part_missing_from_its_update_is_never_taken_from_another_update(tmp_path: Path) -> None:
    """Every update of a report reuses the file names: a part of this update that is not in its
    `<assemblyId>/` folder is missing, whatever file of that name lies elsewhere in the period."""
    path, parts = cur_export(tmp_path / "copy")
    older = path.parent / parts[1].name  # the same name, from an earlier update copied flat
    older.write_bytes(parts[1].read_bytes())
    parts[1].unlink()
    with pytest.raises(InputError, match="is not there"):
        read_manifest(path)


def test_an_update_s_own_copy_of_its_manifest_warns_when_the_period_names_another(tmp_path: Path) -> None:
    path, _ = cur_export(tmp_path / "copy")
    copy = path.parent / "asm-1" / path.name
    copy.write_bytes(path.read_bytes())
    assert read_manifest(copy).current == ""  # the period's manifest names this update
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "assemblyId": "asm-2"}))
    assert read_manifest(copy).current == "asm-2"
    got = cli(tmp_path / "wh", "ingest", "--manifest", str(copy))
    assert got.returncode == 0, got.stderr
    assert got.stderr.startswith("warning: the manifest in the billing period's folder names update asm-2")


def _cur_manifest(tmp_path: Path, body: object) -> Path:
    path, _ = cur_export(tmp_path / "copy")
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def _keys(*keys: object) -> dict[str, object]:
    return {"assemblyId": "asm-1", "reportKeys": list(keys)}


FIRST = f"billing/my-report/{PERIOD}/asm-1/my-report-00001.csv.gz"

REFUSED = {
    "parent folder": (_keys(FIRST, "../../../secret.csv"), "cannot be a file of this delivery"),
    "absolute key": (_keys("/etc/passwd"), "cannot be a file of this delivery"),
    "dot segment": (_keys(f"billing/my-report/{PERIOD}/./my-report-00001.csv.gz"), "cannot be a file"),
    "control character": (_keys("billing/\x1b[31mred.csv"), "cannot be a file of this delivery"),
    "outside the period": (_keys(FIRST, "billing/my-report/secret.csv"), "is not in the delivery's folder"),
    "another update": (
        _keys(f"billing/my-report/{PERIOD}/asm-0/x.csv.gz"),
        "where the files of this update are",
    ),
    "missing part": (_keys(FIRST, f"billing/my-report/{PERIOD}/asm-1/gone.csv.gz"), "is not there"),
    "a folder": (_keys(f"billing/my-report/{PERIOD}/asm-1"), "is not a regular file"),
    "name too long": (_keys(FIRST, f"billing/my-report/{PERIOD}/{'a' * 300}"), "cannot be a file"),
    "another report": (_keys(f"billing/other-report/{PERIOD}/asm-1/my-report-00001.csv.gz"), "not in the"),
    "two places": (_keys(FIRST, f"billing/my-report/{PERIOD}/my-report-00002.csv.gz"), "all in one place"),
    "one file twice": (_keys(FIRST, FIRST), "are one file"),
    "a key twice": ('{"reportKeys": ["/etc/passwd"], "reportKeys": []}', "appears twice"),
    "not a number": ('{"reportKeys": [], "n": NaN}', "NaN is not a JSON number"),
    "not json": ("{reportKeys: [", "not a JSON manifest"),
    "a list": ([FIRST], "not an export manifest"),
    "neither kind": ({"assemblyId": "asm-1"}, "neither reportKeys nor dataFiles"),
    "both kinds": ({"reportKeys": [FIRST], "dataFiles": []}, "both reportKeys and dataFiles"),
    "empty": (_keys(), "reportKeys is empty"),
    "not strings": (_keys(FIRST, 7), "not a list of keys"),
    "deeply nested": ("[" * 100_000 + "]" * 100_000, "not a JSON manifest"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_manifest_that_cannot_be_used_is_refused_in_one_line(tmp_path: Path, case: str) -> None:
    body, message = REFUSED[case]
    (tmp_path / "secret.csv").write_text("not billing data\n")
    path = _cur_manifest(tmp_path, body)
    with pytest.raises(InputError, match=message) as raised:
        read_manifest(path)
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value).replace("\\x1b", "")


@pytest.mark.parametrize("link", ["a part of the update", "a part of another update", "the update's folder"])
def test_a_data_file_reached_through_a_link_inside_the_period_is_refused(tmp_path: Path, link: str) -> None:
    """A link could join a file of another update (or the same file twice) to this delivery."""
    path, parts = cur_export(tmp_path / "copy")
    if link == "the update's folder":
        other = path.parent / "asm-0"
        parts[0].parent.rename(other)
        parts[0].parent.symlink_to(other)
    else:
        target = parts[0] if link == "a part of the update" else path.parent / "asm-0" / parts[1].name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            target.write_bytes(parts[1].read_bytes())
        parts[1].unlink()
        parts[1].symlink_to(target)
    with pytest.raises(InputError, match="is a symbolic link"):
        read_manifest(path)


def test_a_data_file_that_links_out_of_the_export_folder_is_refused(tmp_path: Path) -> None:
    path, parts = cur_export(tmp_path / "copy")
    (tmp_path / "secret.csv").write_text("not billing data\n")
    parts[1].unlink()
    parts[1].symlink_to(tmp_path / "secret.csv")
    with pytest.raises(InputError, match="is a symbolic link"):
        read_manifest(path)


def test_data_exports_keys_and_layout_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "my-export"
    path = export / "metadata" / "BILLING_PERIOD=2024-01" / "m.json"
    path.parent.mkdir(parents=True)
    (export / "outside").mkdir()
    (export / "outside" / "x.csv").write_text("not billing data\n")
    refused = {
        "https://example.com/x.csv": "is not an s3:// URI",
        "s3://my-bucket": "names no key in a bucket",
        "s3://my-bucket/my-export/outside/x.csv": "folder data/BILLING_PERIOD=2024-01/",
        "s3://my-bucket/my-export/metadata/BILLING_PERIOD=2024-01/x.csv": "is not in the delivery's folder",
        "s3://my-bucket/my-export/data/BILLING_PERIOD=2024-01/exec-1/x.csv": "where the files of this",
        "s3://my-bucket/my-export/data/BILLING_PERIOD=2023-12/x.csv": "is not in the delivery's folder",
    }
    for uri, message in refused.items():
        path.write_text(json.dumps({"dataFiles": [uri]}))
        with pytest.raises(InputError, match=message):
            read_manifest(path)
    path.write_text(json.dumps({"dataFiles": ["s3://my-bucket/my-export/data/x.csv"]}))
    moved = tmp_path / "m.json"
    path.rename(moved)
    with pytest.raises(InputError, match="read from its place in a copy of the export"):
        read_manifest(moved)
    monkeypatch.setattr(manifests, "MAX_BYTES", 10)
    with pytest.raises(InputError, match="larger than"):
        read_manifest(moved)


def test_a_cur_manifest_outside_a_billing_period_folder_is_refused(tmp_path: Path) -> None:
    path, _ = cur_export(tmp_path / "copy")
    moved = tmp_path / path.name
    path.rename(moved)
    with pytest.raises(InputError, match="<report>/<yyyymmdd-yyyymmdd>/"):
        read_manifest(moved)


def test_the_cli_refuses_a_bad_manifest_or_flags_before_ingesting_anything(tmp_path: Path) -> None:
    path, parts = cur_export(tmp_path / "copy")
    parts[1].unlink()  # the second part is missing: not even the first may land
    root = tmp_path / "wh"
    cases = [
        (["--manifest", str(path)], "is not there"),
        (["--manifest", str(path), str(parts[0])], "either billing files or --manifest"),
        (["--manifest", str(path), "--reparse"], "drop --reparse / --part-of"),
        ([], "give the billing files to ingest, or --manifest"),
    ]
    for args, message in cases:
        got = cli(root, "ingest", *args)
        assert got.returncode == 1, (args, got.stderr)
        assert message in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.stderr
        assert "Traceback" not in got.stderr and got.stdout == ""
    assert not (root / "catalog.db").exists() or not registered_batches(
        Warehouse(Settings(warehouse=str(root)))
    )


def test_a_data_exports_delivery_in_its_execution_s_folder_is_found(tmp_path: Path) -> None:
    """An export that creates new files on each refresh writes them in a folder named by its
    executionId: the manifest's own execution only."""
    export = tmp_path / "my-export"
    parts = gzip_parts(export / "data" / "BILLING_PERIOD=2024-01" / "exec-7", "part")
    path = export / "metadata" / "BILLING_PERIOD=2024-01" / "my-export-Manifest.json"
    path.parent.mkdir(parents=True)
    uris = [f"s3://b/cur2/my-export/data/BILLING_PERIOD=2024-01/exec-7/{p.name}" for p in parts]
    path.write_text(json.dumps({"executionId": "exec-7", "dataFiles": uris}))
    assert read_manifest(path).files == parts
    path.write_text(json.dumps({"executionId": "exec-8", "dataFiles": uris}))
    with pytest.raises(InputError, match="where the files of this update are"):
        read_manifest(path)


def test_a_loop_of_links_as_the_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    got = cli(tmp_path / "wh", "ingest", "--manifest", str(tmp_path / "a"))
    assert got.returncode == 1 and "cannot be read" in got.stderr, got.stderr
    assert len(got.stderr.strip().splitlines()) == 1


def test_the_current_update_warning_reads_only_this_report_s_manifest_and_only_when_files_land(
    tmp_path: Path,
) -> None:
    path, _ = cur_export(tmp_path / "copy")
    copy = path.parent / "asm-1" / path.name
    copy.write_bytes(path.read_bytes())
    other = path.parent / "other-report-Manifest.json"
    other.write_text(json.dumps({"assemblyId": "asm-9", "reportKeys": ["x"]}))
    assert read_manifest(copy).current == ""  # another report's manifest in the folder says nothing
    path.write_text(json.dumps({**json.loads(path.read_text()), "assemblyId": "asm-2"}))
    root = tmp_path / "wh"
    first = cli(root, "ingest", "--manifest", str(copy))
    assert first.returncode == 0 and "names update asm-2" in first.stderr, first.stderr
    again = cli(root, "ingest", "--manifest", str(copy))
    assert again.returncode == 0 and again.stderr == "", again.stderr  # nothing landed: nothing to warn of


def test_a_cur_that_overwrites_or_is_parquet_is_read_from_its_year_and_month_folder(tmp_path: Path) -> None:
    """Such a report is written to `<report>/<report>/year=YYYY/month=M/`, manifest included."""
    month = tmp_path / "billing" / "my-report" / "my-report" / "year=2024" / "month=1"
    parts = gzip_parts(month, "my-report")
    keys = [f"billing/my-report/my-report/year=2024/month=1/{p.name}" for p in parts]
    path = month / "my-report-Manifest.json"
    path.write_text(json.dumps({"assemblyId": "asm-1", "reportKeys": keys}))
    assert read_manifest(path).files == parts
    elsewhere = "billing/my-report/my-report/year=2023/month=1/x.csv"
    path.write_text(json.dumps({"reportKeys": [*keys, elsewhere]}))
    with pytest.raises(InputError, match="is not in the delivery's folder my-report/year=2024/month=1/"):
        read_manifest(path)


def test_an_update_s_copy_of_its_manifest_lists_files_of_its_own_folder_only(tmp_path: Path) -> None:
    """The period's folder itself holds the files of a report that overwrites them, which may be
    another update's by now: an update's copy naming them would mix updates."""
    path, parts = cur_export(tmp_path / "copy")
    copy = path.parent / "asm-1" / path.name
    flat = path.parent / parts[0].name
    flat.write_bytes(parts[0].read_bytes())
    keys = [f"billing/my-report/{PERIOD}/{flat.name}"]
    copy.write_text(json.dumps({"assemblyId": "asm-1", "reportKeys": keys}))
    with pytest.raises(InputError, match=f"is not in the {PERIOD}/asm-1/ folder"):
        read_manifest(copy)
