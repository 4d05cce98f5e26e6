"""The explanation index as a server or `costlake explain` opens it: its chunks and vectors read and
checked against each other, or one error that says the index has to be built again.

A damaged index (a file cut short or edited, the vectors' folder gone, an index built by another
embedder, chunks that are not the ones the vectors were made of) fails the questions that need it,
never the rest: `DamagedIndex` is a `NotReady`, which the API answers 503 without a path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from costlake.errors import InputError, NotReady, first_line
from costlake.rag.chunk_store import written_whole
from costlake.rag.chunks import Chunk
from costlake.rag.index import VectorIndex, VectorIndexError
from costlake.rag.indexer import CHUNKS_FILE, index_folder


class DamagedIndex(NotReady):
    """The index's files cannot answer: questions that need it wait for `costlake index`; those
    answered from the tables do not."""

    public = "the explanation index cannot be read; it has to be built again"


def open_index(
    folder: Path, embedder_id: str, read_chunks: Callable[[], list[Chunk]]
) -> tuple[list[Chunk], VectorIndex]:
    """The chunks (`read_chunks`: a missing chunks file is `NoIndex`, raised as it is) and the vectors
    of the index in `folder` made by `embedder_id`. Chunks the vectors do not list are damage (a
    chunks file emptied or cut at a line's end still reads, and was answered from what was left)
    unless the chunks file is the one `costlake index` wrote (`written_whole`): `index` writes the
    chunks, then the vectors, so while it runs, or after it stopped half way, the chunks are new and
    the vectors older, and the chunks are searched by their words alone until the vectors follow."""
    try:
        chunks = read_chunks()
        index = VectorIndex.open(index_folder(folder, embedder_id), expect_embedder_id=embedder_id)
    except NotReady:
        raise
    except (InputError, VectorIndexError, OSError) as exc:  # ConfigError: another embedder's, or gone
        raise DamagedIndex(_why(folder, first_line(exc))) from exc
    listed = set(index.chunk_ids())
    found = {c.chunk_id for c in chunks}
    if found != listed and not written_whole(folder / CHUNKS_FILE):
        what = (
            f"{len(found - listed)} chunk(s) without vectors, {len(listed - found)} vector(s) without a chunk"
        )
        raise DamagedIndex(_why(folder, f"its chunks and vectors differ: {what}"))
    return chunks, index


def _why(folder: Path, reason: str) -> str:
    return f"the explanation index in {folder} cannot be used ({reason}): run `costlake index` again"
