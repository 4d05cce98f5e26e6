"""What `costlake ingest` was given to ingest, and how each file's outcome is told."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from costlake.cli.context import out, say, state, warn
from costlake.errors import InputError

if TYPE_CHECKING:
    from costlake.pipeline.ingest import IngestResult
    from costlake.sources.manifest import ExportManifest


@dataclass
class Given:
    """The files to ingest, whether they are the parts of one delivery, and the S3 URI of each file
    that is a downloaded copy."""

    files: list[Path]
    parts: bool
    sources: dict[Path, str] = field(default_factory=dict)


@contextlib.contextmanager
def to_ingest(
    files: list[Path], manifest: str | None, parts: bool, reparse: bool, part_of: str | None
) -> Iterator[Given]:
    """The files `ingest` was given, or those its `--manifest` lists (then always as parts); the
    files of a manifest on S3 are downloaded to a scratch folder, which lives as long as the block."""
    if manifest is None:
        if not files:
            raise InputError(
                "ingest: give the billing files to ingest, or --manifest with an export's manifest"
            )
        yield Given(files, parts)
        return
    if files:
        raise InputError("ingest: give either billing files or --manifest, not both")
    if reparse or part_of is not None:
        raise InputError(
            "ingest: --manifest is a new delivery of the files it lists: drop --reparse / --part-of"
        )
    from costlake.sources.manifest import read_manifest
    from costlake.sources.s3_delivery import fetch_delivery, is_s3

    if not is_s3(manifest):
        listed = read_manifest(Path(manifest))
        _tell(manifest, listed)
        yield Given(listed.files, True)
        return
    from costlake.duck import scratch_folder
    from costlake.lake.connect import s3_client

    client = s3_client(state.settings())
    with scratch_folder("costlake-s3-") as into:
        local, sources = fetch_delivery(manifest, client, into)
        listed = read_manifest(local)
        _tell(manifest, listed)
        yield Given(listed.files, True, {path.resolve(): sources[path] for path in sources} | sources)


def _tell(manifest: str, listed: ExportManifest) -> None:
    delivery = f", delivery {listed.delivery}" if listed.delivery else ""
    period = f", billing period {listed.period}" if listed.period else ""
    say(f"{manifest}: {listed.kind} manifest{delivery}{period}: {len(listed.files):,} data file(s)")
    if listed.current:
        warn(
            f"warning: the manifest in the billing period's folder names update {listed.current}, the "
            f"report's current one; ingesting update {listed.delivery or '?'} makes it the period's latest "
            "delivery, which replaces the period whole"
        )


def landed_note(landed: list[IngestResult], total: int, *, parts: bool, part_of: str | None) -> str:
    """What an `ingest` interrupted now leaves, and what to do: its files are committed one by one."""
    done = sum(not r.skipped for r in landed)
    if not done or len(landed) == total:
        return ""
    if parts:
        return (
            f"{done} of {total} parts of the delivery of batch {landed[0].first_part} were committed; run "
            "the same command again: it ingests all the parts as a new delivery, which replaces the short one"
        )
    if part_of is not None:
        return (
            f"{done} of {total} files were added to the delivery of batch {landed[0].first_part}; run the "
            "same command again to add the rest (files already in it are skipped)"
        )
    return (
        f"{done} of {total} files were ingested; run the same command again to ingest the rest (files "
        "already ingested are skipped)"
    )


def print_ingested(r: IngestResult, sources: Mapping[Path, str]) -> None:
    """One file's outcome, printed as soon as it is committed. The file's name and the quarantine
    reasons (which quote values of the file) are data: never markup, never a control sequence. A file
    downloaded from S3 is named by its URI (`sources`)."""

    def shown(path: Path) -> str:
        return sources.get(path) or str(path)

    part = f", a part of the delivery of batch {r.first_part}" if r.first_part else ""
    if r.skipped:
        say(f"{shown(r.path)}: already ingested as batch {r.batch_id}{part}; nothing to do")
        return
    replaces = f", replaces batch {r.replaces}" if r.replaces else ""
    say(
        f"{shown(r.path)}: batch {r.batch_id} ({r.source_format}{replaces}{part}): "
        f"{r.accepted:,} accepted, {r.quarantined:,} quarantined"
    )
    for reason, count in r.reasons:
        say(f"  quarantined {count:,} × {reason}")
    if r.restates:
        warn(
            f"warning: {shown(r.path)} restates billing period(s) that "
            f"{', '.join(map(shown, r.restates))} of this same ingest delivered; a period is replaced "
            "whole by its latest delivery, so the earlier file's rows of them no longer count: ingest "
            "the parts of one export with --parts (docs/billing_formats.md, Deliveries in parts)"
        )
    if r.superseded_by:
        warn(
            f"warning: {shown(r.path)} joins the delivery of batch {r.first_part}, which a later delivery "
            f"(batch {r.superseded_by}) replaced for billing period(s) it delivers: its rows of them will "
            "not count"
        )
    if r.duplicates:
        out.print(
            f"  warning: {r.duplicates:,} row(s) repeat an event_id of an earlier row in the file; "
            "the latest by (ingestion_ts, row) wins"
        )
    if r.unknown_deletes:
        out.print(
            f"  {r.unknown_deletes:,} delete row(s) of events the lake has no version of: kept, they "
            "remove nothing now (a version older than the delete arriving later stays deleted)"
        )
