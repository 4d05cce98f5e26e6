"""Same inputs give the same published content, whatever the file order or row order."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from costlake.lake.fingerprint import content_columns
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.synthetic.generate import generate
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, TableDef
from helpers import ingest_and_run, query_rows

# Lineage columns say which batch and row a winner came from: they follow file order by design.
LINEAGE = {"batch_id", "batch_seq", "source_row"}


def content(wh: Warehouse, tdef: TableDef) -> list[tuple]:
    cols = [c for c in content_columns(tdef) if c not in LINEAGE]
    rows = query_rows(wh, f"SELECT {', '.join(cols)} FROM {tdef.name} ORDER BY ALL")
    return [tuple(r.values()) for r in rows]


def shuffled_copy(src: Path, dst: Path, rng: random.Random) -> Path:
    with src.open(newline="") as handle:
        reader = csv.reader(handle)
        header, rows = next(reader), list(reader)
    rng.shuffle(rows)
    with dst.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return dst


def test_file_order_and_row_order_do_not_change_published_content(tmp_path):
    made = generate(tmp_path / "data", events=3000, days=20, batches=4, seed=11)
    forward = Warehouse(Settings(warehouse=str(tmp_path / "forward")))
    ingest_and_run(forward, *made.files)

    rng = random.Random(5)
    reshuffled = [shuffled_copy(f, tmp_path / f"shuffled_{i}.csv", rng) for i, f in enumerate(made.files)]
    backward = Warehouse(Settings(warehouse=str(tmp_path / "backward"), duckdb_threads=1))
    # Reverse order, in two runs instead of one.
    ingest_and_run(backward, *reversed(reshuffled[2:]))
    ingest_and_run(backward, *reversed(reshuffled[:2]))

    for tdef in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT):
        a, b = content(forward, tdef), content(backward, tdef)
        assert a == b, tdef.name
        assert a, tdef.name
    assert len(content(forward, NORMALIZED)) == 3000
