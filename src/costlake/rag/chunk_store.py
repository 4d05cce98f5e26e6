"""The chunks file as `costlake index` leaves it and `explain` reads it, with a digest beside it.

Reading checks each line's content hash and passes each chunk through the name policy
(`chunks.read_jsonl`, `chunks.shown_chunk`): about a tenth of a second for 3,000 chunks, paid by
every cold `costlake explain`. The digest file (`<chunks>.digest`) records the sha256 of the bytes
`write_chunks` wrote and that every chunk in them was already shown through the policy. When the
file's bytes still have that sha256, its lines are the checked chunks that were written and are read
as they are; any other file (edited, older, no digest) is read with every check.
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
    shown = all(shown_chunk(c) is c for c in chunks)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    digest.write_text(json.dumps({"sha256": sha, "shown": shown}) + "\n")


def read_chunks(path: Path) -> list[Chunk]:
    """The chunks of `path` as they may be shown; trusted as written when the digest matches."""
    data = path.read_bytes()
    try:
        recorded = json.loads(_digest_path(path).read_text())
    except (OSError, ValueError):
        recorded = None
    if (
        isinstance(recorded, dict)
        and recorded.get("shown") is True
        and recorded.get("sha256") == hashlib.sha256(data).hexdigest()
    ):
        return [Chunk.from_dict(json.loads(line)) for line in data.decode().splitlines() if line.strip()]
    return [shown_chunk(c) for c in read_jsonl(path)]
