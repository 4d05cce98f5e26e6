"""Deliveries in parts: the files of one FOCUS or CUR export, ingested with `--parts` (or added with
`--part-of`), count together as their billing period's latest delivery, on every engine; a later
delivery still replaces the period whole, and what cannot be parts of one delivery is refused before
anything is written."""

from __future__ import annotations

import csv
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from billing_sums import CUR, FOCUS, cur_totals, focus_totals, published
from costlake.lake.batches import registered_batches
from costlake.lake.faults import EXIT_CODE, SIGNAL_ENV
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.tables import QUARANTINE, RAW
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


def test_an_interrupted_parts_ingest_run_again_makes_a_whole_delivery_that_replaces_the_partial_one(
    tmp_path: Path, monkeypatch
) -> None:
    """Killed after its first part's commit, before the registry row: the next command registers
    that part (a delivery short of a part), and the same `ingest --parts` run again ingests both
    parts as a new delivery, which replaces it."""
    root = tmp_path / "wh"
    parts = split(CUR, tmp_path / "export")
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "after_commit:raw_billing_events")
    assert cli(root, "ingest", "--parts", *map(str, parts)).returncode == EXIT_CODE
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    done = cli(root, "ingest", "--parts", *map(str, parts))
    assert done.returncode == 0, done.stderr
    joined = "a part of the delivery of batch b000002-"
    first, second = done.stdout.splitlines()
    assert ": batch b000002-" in first and joined in first  # part 1 again, in the new delivery
    assert ": batch b000003-" in second and joined in second
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == cur_totals(CUR)
    assert [b.delivery_group for b in registered_batches(wh)] == [1, 2, 2]
    again = cli(root, "ingest", "--parts", *map(str, parts))  # the same files are one delivery now
    assert again.returncode == 0 and again.stdout.count("already ingested as batch") == 2
    assert len(registered_batches(wh)) == 3


class _Stopped(BaseException):
    """What stops an ingest right after its first part's raw commit, as a signal would."""


@pytest.mark.all_engines
def test_a_delivery_short_of_its_parts_does_not_count_until_it_is_whole(make_wh, tmp_path: Path) -> None:
    """An `ingest --parts` stopped between its commits leaves a delivery short of parts: a run then
    keeps the delivery before it (here the export as one file) instead of publishing a part of the new
    one, and the same parts ingested again are a whole delivery, which counts."""
    wh = make_wh()
    ingest_files(wh, [CUR])
    publish_and_detect(wh)
    before = published(wh)
    parts = split(CUR, tmp_path / "v2", count=3)
    with parts[1].open(newline="") as handle:
        header, first, *rows = list(csv.reader(handle))
    first[header.index("lineItem/UnblendedCost")] = str(
        Decimal(first[header.index("lineItem/UnblendedCost")]) + 7
    )
    with parts[1].open("w", newline="") as handle:
        csv.writer(handle).writerows([header, first, *rows])

    def stop(_: object) -> None:
        raise _Stopped

    with pytest.raises(_Stopped):
        ingest_files(wh, parts, parts=True, on_commit=stop)
    short = registered_batches(wh)[-1]
    assert (short.delivery_group, short.delivery_parts) == (2, 3)  # read back from the raw commit
    publish_and_detect(wh)
    assert published(wh) == before == cur_totals(CUR)
    assert cli(wh.settings.warehouse, "validate").returncode == 0
    ingest_files(wh, parts, parts=True)
    publish_and_detect(wh)
    assert published(wh) == totals_of(parts, CUR) != before


def test_a_short_delivery_never_counts_and_its_landed_parts_alone_are_a_new_delivery(tmp_path: Path) -> None:
    """Only the parts its command declared complete a delivery: a file added to a short one with
    --part-of does not make it count (nor warn that it replaced anything), and the parts that landed,
    given again as the whole export, are a new delivery rather than nothing to do."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    ingest_files(wh, [CUR])
    publish_and_detect(wh)
    before = published(wh)
    parts = split(CUR, tmp_path / "v2", count=3)

    def stop(_: object) -> None:
        raise _Stopped

    with pytest.raises(_Stopped):
        ingest_files(wh, parts, parts=True, on_commit=stop)
    short = registered_batches(wh)[-1].batch_id
    added = ingest_files(wh, [parts[2]], part_of=short)
    publish_and_detect(wh)
    assert published(wh) == before
    to_first = ingest_files(wh, [parts[1]], part_of=registered_batches(wh)[0].batch_id)
    assert [r.superseded_by for r in added + to_first] == ["", ""]  # a short delivery replaces nothing
    again = ingest_files(wh, [parts[0]], parts=True)
    assert [r.skipped for r in again] == [False]
    publish_and_detect(wh)
    assert published(wh) == totals_of([parts[0]], CUR)


def test_a_re_read_of_a_file_also_in_a_short_delivery_re_reads_the_copy_that_counts(tmp_path: Path) -> None:
    """A part of a whole delivery, repeated in a later export stopped after it: --reparse re-reads it
    in the whole delivery (where it counts), and a file added to the short one is flagged."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    parts = split(CUR, tmp_path / "v1", count=3)
    whole = ingest_files(wh, parts, parts=True)

    def stop(_: object) -> None:
        raise _Stopped

    with pytest.raises(_Stopped):
        ingest_files(wh, [parts[0], parts[1]], parts=True, on_commit=stop)
    assert len(registered_batches(wh)) == 4  # the short delivery holds parts[0] again
    again = ingest_files(wh, [parts[0]], reparse=True)
    assert again[0].replaces == whole[0].batch_id and not again[0].short_delivery
    short = registered_batches(wh)[3].batch_id
    added = ingest_files(wh, [parts[2]], part_of=short)
    assert added[0].short_delivery
    publish_and_detect(wh)
    assert published(wh) == cur_totals(CUR)


@pytest.mark.parametrize("point", ["ingest:committed", "after_commit:raw_billing_events"])
def test_an_interrupt_between_the_commits_of_parts_says_what_landed_and_how_to_finish(
    tmp_path: Path, monkeypatch, point: str
) -> None:
    """Counted from the raw commit, which is the batch: a part interrupted before its registry row
    has landed all the same (the next command registers it)."""
    root = tmp_path / "wh"
    parts = split(CUR, tmp_path / "export", count=3)
    monkeypatch.setenv(SIGNAL_ENV, f"{point}:INT")
    stopped = cli(root, "ingest", "--parts", *map(str, parts))
    monkeypatch.delenv(SIGNAL_ENV)
    assert stopped.returncode == 130, stopped.stderr
    first = f"b000001-{hashlib.sha256(parts[0].read_bytes()).hexdigest()[:12]}"
    assert stopped.stderr == (
        f"interrupted: 1 of 3 parts of the delivery of batch {first} were committed; run the same command "
        "again: it ingests all the parts as a new delivery, which replaces the short one (until then, "
        "runs keep the delivery before it)\n"
    )
    assert cli(root, "ingest", "--parts", *map(str, parts)).returncode == 0
    assert cli(root, "run").returncode == 0
    assert published(Warehouse(Settings(warehouse=str(root)))) == cur_totals(CUR)


def test_a_new_export_repeating_a_part_unchanged_is_a_new_delivery_not_more_of_the_old_one(
    tmp_path: Path,
) -> None:
    """Exports repeat parts byte for byte (a part whose rows did not change, a header-only part):
    such a file is read again as a part of the new delivery, which replaces the old one whole."""
    root = tmp_path / "wh"
    parts = split(FOCUS, tmp_path / "v1", count=3)
    empty = tmp_path / "v1" / "empty.csv"
    empty.write_text(FOCUS.read_text().splitlines()[0] + "\n")
    assert cli(root, "ingest", "--parts", str(empty), *map(str, parts)).returncode == 0
    changed = tmp_path / "v2" / parts[0].name
    changed.parent.mkdir()
    with parts[0].open(newline="") as handle:
        header, first, *rows = list(csv.reader(handle))
    first[header.index("BilledCost")] = str(Decimal(first[header.index("BilledCost")]) + 100)
    with changed.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, first, *rows])
    v2 = [changed, parts[1], parts[2], empty]
    done = cli(root, "ingest", "--parts", *map(str, v2))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("a part of the delivery of batch b000005-") == 4
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == totals_of(v2[:3], FOCUS) != focus_totals(FOCUS)
    # The first export again: it was replaced since, so its parts come again as the latest delivery
    # (the way back to an earlier update), where the same files as the latest delivery do nothing.
    back = cli(root, "ingest", "--parts", str(empty), *map(str, parts))
    assert back.returncode == 0 and back.stdout.count("a part of the delivery of batch b000009-") == 4
    assert cli(root, "run").returncode == 0
    assert published(wh) == focus_totals(FOCUS)
    again = cli(root, "ingest", "--parts", str(empty), *map(str, parts))
    assert again.returncode == 0 and again.stdout.count("already ingested") == 4, again.stdout


def test_a_part_that_cannot_be_read_leaves_the_lake_as_it_was(tmp_path: Path) -> None:
    """Every part is read and checked before the first is committed: a malformed last part stops
    the command with nothing committed and nothing left behind, and the next run publishes what the
    lake had."""
    root = tmp_path / "wh"
    assert cli(root, "ingest", str(FOCUS)).returncode == 0 and cli(root, "run").returncode == 0
    first, second = split(FOCUS, tmp_path / "export")
    broken = tmp_path / "export" / "broken.csv"
    broken.write_text(second.read_text() + '"unterminated,quote\n')
    refused = cli(root, "ingest", "--parts", str(first), str(broken))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "broken.csv" in refused.stderr and refused.stdout == ""
    wh = Warehouse(Settings(warehouse=str(root)))
    assert [b.batch_seq for b in registered_batches(wh)] == [1]
    assert sorted(p.name for p in wh.staging_root(RAW).glob("batch_id=*")) == [
        f"batch_id={registered_batches(wh)[0].batch_id}"
    ]
    assert cli(root, "run").returncode == 0 and published(wh) == focus_totals(FOCUS)


def test_a_part_added_to_a_replaced_delivery_is_warned_about(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    first, second = split(FOCUS, tmp_path / "export")
    assert cli(root, "ingest", str(first)).returncode == 0
    assert cli(root, "ingest", str(FOCUS)).returncode == 0  # a later delivery of the same periods
    added = cli(root, "ingest", "--part-of", "b000001-" + _sha(first)[:12], str(second))
    assert added.returncode == 0, added.stderr
    assert added.stderr.startswith(f"warning: {second} joins the delivery of batch b000001-")
    assert "a later delivery (batch b000002-" in added.stderr and "will not count" in added.stderr
    assert cli(root, "run").returncode == 0
    assert published(Warehouse(Settings(warehouse=str(root)))) == focus_totals(FOCUS)


def test_a_reread_part_stays_in_its_delivery_and_restates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    parts = split(FOCUS, tmp_path / "export", count=3)
    assert cli(root, "ingest", "--parts", *map(str, parts)).returncode == 0
    reread = cli(root, "ingest", "--reparse", str(parts[2]), str(parts[0]))
    assert reread.returncode == 0, reread.stderr
    lines = reread.stdout.splitlines()
    assert "replaces batch b000003-" in lines[0] and "a part of the delivery of batch b000001-" in lines[0]
    assert reread.stderr == ""  # re-reads keep their delivery's place: no restatement to warn of
    assert cli(root, "run").returncode == 0
    assert published(Warehouse(Settings(warehouse=str(root)))) == focus_totals(FOCUS)
    # Two deliveries re-read in one command, the later first: neither restates the other.
    apart = tmp_path / "apart"
    for part in parts[:2]:
        assert cli(apart, "ingest", str(part)).returncode == 0
    both = cli(apart, "ingest", "--reparse", str(parts[1]), str(parts[0]))
    assert both.returncode == 0 and both.stderr == "", both.stderr


def test_what_cannot_be_parts_of_one_delivery_is_refused_in_one_line_before_anything_is_written(
    tmp_path: Path, write_csv
) -> None:
    root = tmp_path / "wh"
    focus_parts = split(FOCUS, tmp_path / "focus")
    cur_parts = split(CUR, tmp_path / "cur")
    native = write_csv("native.csv", [["e1", "2025-01-03", "A1", "EC2", "2.5", "2025-01-05"]])
    assert cli(root, "ingest", str(focus_parts[0])).returncode == 0
    refusals = {
        ("--part-of", "b999999-nope", str(focus_parts[1])): "--part-of b999999-nope: no batch has this id",
        ("--part-of", "b000001-" + _sha(focus_parts[0])[:12], str(cur_parts[1])): (
            f"{cur_parts[1]}: reads as cur, but the other parts of this delivery are focus"
        ),
        ("--parts", str(focus_parts[1]), str(cur_parts[1])): f"{cur_parts[1]}: reads as cur, but the other",
        ("--parts", str(native)): f"{native}: reads as native; parts are for FOCUS and CUR exports",
        ("--reparse", "--parts", str(focus_parts[0])): "--reparse keeps each file in the delivery",
    }
    for args, start in refusals.items():
        refused = cli(root, "ingest", *args)
        line = refused.stderr.strip()
        assert refused.returncode == 1 and "\n" not in line and "Traceback" not in line, (args, line)
        assert start in line, (args, line)
    wh = Warehouse(Settings(warehouse=str(root)))
    assert [b.batch_seq for b in registered_batches(wh)] == [1]  # nothing more was ingested


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_reread_reads_the_copy_in_the_files_latest_delivery(tmp_path: Path) -> None:
    """A file in two deliveries (a part repeated, then added to the older delivery too): `--reparse`
    re-reads the copy that counts, in the later delivery."""
    root = tmp_path / "wh"
    c1, c2, c3 = split(CUR, tmp_path / "export", count=3)
    assert cli(root, "ingest", "--parts", str(c1), str(c2)).returncode == 0  # b1, b2
    assert cli(root, "ingest", "--parts", str(c2), str(c3)).returncode == 0  # b3, b4: replaces the first
    older = "b000001-" + _sha(c1)[:12]
    assert "will not count" in cli(root, "ingest", "--part-of", older, str(c3)).stderr  # b5
    reread = cli(root, "ingest", "--reparse", str(c3))
    assert reread.returncode == 0, reread.stderr
    assert "replaces batch b000004-" in reread.stdout and "delivery of batch b000003-" in reread.stdout
    assert cli(root, "run").returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    assert published(wh) == totals_of([c2, c3], CUR)
    counted = query_rows(wh, "SELECT DISTINCT batch_seq FROM normalized_billing_events ORDER BY 1")
    assert [r["batch_seq"] for r in counted] == [3, 6]


def test_a_quarantine_file_staged_by_a_stopped_parts_ingest_is_removed_by_the_next_ingest(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "wh"
    first, second = split(FOCUS, tmp_path / "export")
    with second.open(newline="") as handle:
        header, row, *rows = list(csv.reader(handle))
    row[header.index("BilledCost")] = "not a cost"
    with second.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, row, *rows])
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "after_commit:raw_billing_events")  # after the first part's
    assert cli(root, "ingest", "--parts", str(first), str(second)).returncode == EXIT_CODE
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    wh = Warehouse(Settings(warehouse=str(root)))
    staged = "batch_id=b000002-" + _sha(second)[:12]
    assert (wh.staging_root(QUARANTINE) / staged).is_dir()  # staged, never committed
    done = cli(root, "ingest", "--parts", str(first), str(second))
    assert done.returncode == 0 and "1 quarantined" in done.stdout, done.stderr
    assert not (wh.staging_root(QUARANTINE) / staged).exists()
    assert query_rows(wh, "SELECT count(*) AS n FROM quarantine") == [{"n": 1}]
