"""Embedders behind one small base class; see base.py."""

from costlake.rag.embedders.base import (
    Embedder,
    EmbedderError,
    HashingEmbedder,
    RemoteEmbedder,
    embedder_for,
    register,
    shared_embedder,
)

__all__ = [
    "Embedder",
    "EmbedderError",
    "HashingEmbedder",
    "RemoteEmbedder",
    "embedder_for",
    "register",
    "shared_embedder",
]


# Built-in providers register through the same hook as third-party ones. Each factory imports its module on
# first use, so `import costlake.rag.embedders` never loads onnxruntime, boto3 or openai.
def _minilm(**options: object) -> Embedder:
    from costlake.rag.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder(**options)  # type: ignore[arg-type]


def _titan(**options: object) -> Embedder:
    from costlake.rag.embedders.titan import TitanEmbedder

    return TitanEmbedder(**options)  # type: ignore[arg-type]


def _openai(**options: object) -> Embedder:
    from costlake.rag.embedders.openai_compat import OpenAICompatEmbedder

    return OpenAICompatEmbedder(**options)  # type: ignore[arg-type]


register("minilm", _minilm)
register("titan", _titan)
register("openai", _openai)
