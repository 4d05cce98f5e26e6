"""Deliveries in parts: the files of one FOCUS or CUR export, ingested with `--parts` (or added with
`--part-of`), count together as their billing period's latest delivery, on every engine; a later
delivery still replaces the period whole, and what cannot be parts of one delivery is refused before
anything is written."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from billing_sums import CUR, FOCUS, cur_totals, focus_totals, published
from costlake.lake.batches import registered_batches
from costlake.lake.faults import EXIT_CODE
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from helpers import cli, query_rows

TOTALS = {FOCUS: focus_totals, CUR: cur_totals}
EVENTS = "SELECT event_id, billed_cost, effective_cost FROM normalized_billing_events ORDER BY event_id"


def split(path: Path, folder: Path, count: int = 2) -> list[Path]:
    """The file's rows dealt out to `count` part files under its header, row by row: an hour of a line
    item lands in one part and the next hour in another, so most daily events have rows in every part."""
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    folder.mkdir(parents=True, exist_ok=True)
    parts = [folder / f"{path.stem}-{n + 1:05d}.csv" for n in range(count)]
    for n, part in enumerate(parts):
        with part.open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows[n::count]])
    return parts


def totals_of(paths: list[Path], source: Path) -> dict[tuple[str, str], Decimal]:
    """The exact sum of the parts' rows, per account-day, read independently of costlake."""
    out: dict[tuple[str, str], Decimal] = {}
    for part in paths:
        for key, value in TOTALS[source](part).items():
            out[key] = out.get(key, Decimal(0)) + value
    return out


@pytest.mark.all_engines
@pytest.mark.parametrize("source", [FOCUS, CUR], ids=["focus", "cur"])
def test_the_parts_of_one_export_count_together_as_one_delivery(
    make_wh, tmp_path: Path, source: Path
) -> None:
    """Ingested as parts, the export publishes what it publishes as one file, event for event (an
    event with rows in both parts is one event, its cost their sum); ingested as two files, the second
    replaces the periods both deliver, as a later delivery of a period should."""
    parts = split(source, tmp_path / "export")
    whole, in_parts, apart = (make_wh(name) for name in ("whole", "parts", "apart"))
    ingest_files(whole, [source])
    results = ingest_files(in_parts, parts, parts=True)
    ingest_files(apart, parts)
    for wh in (whole, in_parts, apart):
        publish_and_detect(wh)
    assert published(in_parts) == TOTALS[source](source) == totals_of(parts, source)
    assert query_rows(in_parts, EVENTS) == query_rows(whole, EVENTS)
    assert published(apart) != published(in_parts)  # as two deliveries, the first part's periods lost
    first = results[0].batch_id
    assert [(r.first_part, r.restates) for r in results] == [(first, []), (first, [])]
    groups = {b.batch_seq: b.delivery_group for b in registered_batches(in_parts)}
    assert groups == {1: 1, 2: 1}


def test_a_part_added_later_joins_its_delivery_and_a_new_delivery_still_replaces_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "wh"
    first, second = split(FOCUS, tmp_path / "export")
    wh = Warehouse(Settings(warehouse=str(root)))
    [one] = ingest_files(wh, [first])
    publish_and_detect(wh)
    assert published(wh) == focus_totals(first)
    added = cli(root, "ingest", "--part-of", one.batch_id, str(second))
    assert added.returncode == 0, added.stderr
    assert f"a part of the delivery of batch {one.batch_id}" in added.stdout and added.stderr == ""
    assert cli(root, "run").returncode == 0
    assert published(wh) == focus_totals(FOCUS)
    # A later delivery of the period, in one file, replaces both parts: here only the first half.
    again = tmp_path / "redelivered.csv"
    again.write_bytes(first.read_bytes() + b"\r\n")  # a new checksum
    assert cli(root, "ingest", str(again)).returncode == 0 and cli(root, "run").returncode == 0
    assert published(wh) == focus_totals(first)


def test_an_interrupted_parts_ingest_run_again_adds_the_rest_to_the_same_delivery(
    tmp_path: Path, monkeypatch
) -> None:
    """Killed after its first part's commit, before the registry row: the next command registers
    that part with its delivery, and the same `ingest --parts` adds the second part to it."""
    root = tmp_path / "wh"
    parts = split(CUR, tmp_path / "export")
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "after_commit:raw_billing_events")
    assert cli(root, "ingest", "--parts", *map(str, parts)).returncode == EXIT_CODE
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    done = cli(root, "ingest", "--parts", *map(str, parts))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "already ingested as batch b000001-" in lines[0]
        and "a part of the delivery of batch b000001-" in lines[0]
    )
    assert "batch b000002-" in lines[1] and "a part of the delivery of batch b000001-" in lines[1]
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == cur_totals(CUR)
    assert [b.delivery_group for b in registered_batches(wh)] == [1, 1]


def test_a_reread_part_stays_in_its_delivery(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    parts = split(FOCUS, tmp_path / "export", count=3)
    assert cli(root, "ingest", "--parts", *map(str, parts)).returncode == 0
    reread = cli(root, "ingest", "--reparse", str(parts[2]))
    assert reread.returncode == 0, reread.stderr
    assert (
        "replaces batch b000003-" in reread.stdout
        and "a part of the delivery of batch b000001-" in reread.stdout
    )
    assert cli(root, "run").returncode == 0
    assert published(Warehouse(Settings(warehouse=str(root)))) == focus_totals(FOCUS)


def test_what_cannot_be_parts_of_one_delivery_is_refused_in_one_line_before_anything_is_written(
    tmp_path: Path,
) -> None:
    root = tmp_path / "wh"
    focus_parts = split(FOCUS, tmp_path / "focus")
    cur_parts = split(CUR, tmp_path / "cur")
    assert cli(root, "ingest", str(focus_parts[0])).returncode == 0
    assert cli(root, "ingest", str(cur_parts[0])).returncode == 0
    refusals = {
        ("--part-of", "b999999-nope", str(focus_parts[1])): "--part-of b999999-nope: no batch has this id",
        ("--parts", str(focus_parts[0]), str(cur_parts[0]), str(focus_parts[1])): (
            f"{cur_parts[0]}: already ingested as batch b000002-"
        ),
        (
            "--parts",
            str(focus_parts[1]),
            str(cur_parts[1]),
        ): f"{cur_parts[1]}: reads as cur, but the other parts",
        ("--reparse", "--parts", str(focus_parts[0])): "--reparse keeps each file in the delivery",
    }
    for args, start in refusals.items():
        refused = cli(root, "ingest", *args)
        line = refused.stderr.strip()
        assert refused.returncode == 1 and "\n" not in line and "Traceback" not in line, (
            args,
            refused.stderr,
        )
        assert start in line, (args, line)
    wh = Warehouse(Settings(warehouse=str(root)))
    assert [b.batch_seq for b in registered_batches(wh)] == [1, 2]  # nothing more was ingested
