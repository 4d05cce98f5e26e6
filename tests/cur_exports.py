"""A CUR export written the way AWS writes one: the CUR sample's rows dealt out to gzip CSV parts."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from billing_sums import CUR

PERIOD = "20240101-20240201"


def gzip_parts(folder: Path, stem: str, count: int = 2) -> list[Path]:
    """The CUR sample's rows dealt out to `count` gzip CSV parts under its header, row by row (so
    most daily line items have rows in every part)."""
    with CUR.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    folder.mkdir(parents=True, exist_ok=True)
    parts = [folder / f"{stem}-{n + 1:05d}.csv.gz" for n in range(count)]
    for n, part in enumerate(parts):
        with gzip.open(part, "wt", newline="") as handle:
            csv.writer(handle).writerows([header, *rows[n::count]])
    return parts
