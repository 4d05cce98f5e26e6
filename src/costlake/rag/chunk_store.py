"""The chunks file as `costlake index` leaves it and `explain` reads it, with a digest beside it.

Reading checks each line's content hash (`chunks.read_jsonl`): a tenth of a second for 3,000 chunks,
paid by every cold `costlake explain`. The digest file (`<chunks>.digest`) records the sha256 of the
bytes `write_chunks` wrote; when the file still has that sha256, its lines are the checked chunks that
were written and their hashes are not recomputed. Any other file (edited, older, no digest) has every
line checked. Either way every chunk passes the name policy again (`chunks.shown_chunk`): the digest
is written by whoever can write the folder, so it vouches for integrity, never for what may be shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from costlake.rag.chunks import Chunk, read_jsonl, shown_chunk, write_jsonl

DIGEST_SUFFIX = ".digest"


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_chunks(chunks: Sequence[Chunk], path: Path) -> None:
    """Write the chunks file (`write_jsonl`), then its digest."""
    digest = _digest_path(path)
    digest.unlink(missing_ok=True)  # never a digest of the previous file beside the new one
    write_jsonl(chunks, path)
    digest.write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}) + "\n")


def _matches_digest(path: Path, data: bytes) -> bool:
    """Whether `data` (the bytes of `path`) are those whose sha256 the digest beside `path` records."""
    try:
        recorded = json.loads(_digest_path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(recorded, dict) and recorded.get("sha256") == hashlib.sha256(data).hexdigest()


def written_whole(path: Path) -> bool:
    """Whether `path` is byte for byte the file `write_chunks` last wrote (its digest matches)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return _matches_digest(path, data)


def read_chunks(path: Path) -> list[Chunk]:
    """The chunks of `path` as they may be shown; hashes not recomputed when the digest matches."""
    data = path.read_bytes()
    if _matches_digest(path, data):
        chunks = [Chunk.from_dict(json.loads(line)) for line in data.decode().splitlines() if line.strip()]
    else:
        chunks = read_jsonl(path)
    return [shown_chunk(c) for c in chunks]
