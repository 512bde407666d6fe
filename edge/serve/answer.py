"""The one place the server calls the device pipeline: bytes or a frame in, a JSON answer out.

Everything model- and photo-specific that ``edge-serve`` does goes through
:class:`Classifier`, so when the photo pipeline or :class:`~fmnist_edge.edge.classify.Prediction`
changes, this file is the only one to adapt.  The answer is exactly what
``edge-classify --json`` prints for the same image, plus ``timings_ms`` per stage.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fmnist_edge.edge import photo
from fmnist_edge.edge.classify import classify
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

#: Preprocessing methods a caller may ask for (``?preprocess=``).
METHODS = photo.METHODS
#: The photo pipeline's own default method.
DEFAULT_METHOD = photo.DEFAULT_METHOD


@dataclass(frozen=True)
class Options:
    """What a caller may choose per request."""

    top_k: int = 1
    method: str = DEFAULT_METHOD
    #: Below this top-1 probability the answer is "unsure"; None: the manifest's suggestion.
    min_confidence: float | None = None


class Classifier:
    """A model shared by request handlers and the camera thread.

    Runtimes' interpreters are not thread-safe, so the model call is serialised by a lock;
    decoding and preprocessing (the slow part) run outside it, in parallel.
    """

    def __init__(self, model: EdgeModel) -> None:
        self.model = model
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Decode one tiny image and run the model once, so the first caller does not pay
        for pillow's plugin loading and the runtime's first-call set-up; load and try the
        learned segmenter too (:func:`photo.pipeline_version` runs it once)."""
        buf = io.BytesIO()
        Image.new("L", photo.SHAPE[::-1]).save(buf, format="PNG")  # pillow wants (W, H)
        photo.open_image(buf.getvalue(), "warm-up")
        photo.pipeline_version()
        with self._lock:
            self.model.predict(np.zeros((1, *photo.SHAPE), np.uint8))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.class_names

    def image(self, data: bytes, name: str, options: Options) -> dict[str, Any]:
        """An encoded image (any format pillow may open) → the answer, or a UserError."""
        start = time.perf_counter()
        img = photo.open_image(data, name)
        decoded = time.perf_counter()
        views = photo.to_views(img, options.method)
        return self._answer(views, name, options, start, decoded)

    def frame(self, frame: np.ndarray, name: str, options: Options) -> dict[str, Any]:
        """A camera frame (RGB uint8) → the answer."""
        start = time.perf_counter()
        views = photo.frame_to_views(frame, options.method)
        return self._answer(views, name, options, start, start)

    def _answer(self, views: np.ndarray, name: str, options: Options, start: float,
                decoded: float) -> dict[str, Any]:
        prepared = time.perf_counter()
        with self._lock:
            pred = classify(self.model, views, name, min(options.top_k, len(self.classes)),
                            options.min_confidence)
        done = time.perf_counter()
        record = pred.to_json(photo.pipeline_version(options.method))
        record["timings_ms"] = {
            "decode": _ms(decoded - start), "preprocess": _ms(prepared - decoded),
            "inference": round(pred.latency_ms, 4), "total": _ms(done - start),
        }
        return record


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


def label_of(record: dict[str, Any]) -> str:
    """The top-1 class of an answer, or ``"none"`` when there is no class at all (the photo
    pipeline v2 answers "no garment found" with an empty top-k)."""
    top = record.get("top_k") or []
    return str(top[0]["class"]) if top else "none"


def is_unsure(record: dict[str, Any]) -> bool:
    """True when the answer says the model was unsure (v2's ``"status": "unsure"``)."""
    return record.get("status") == "unsure"


def status_of(error: UserError) -> int:
    """The HTTP status for a photo that could not be classified.

    413 for images refused as too large (decompression bombs), 400 for an empty body,
    415 for bytes that are no supported image, 422 for a damaged one.
    """
    text = str(error)
    if "too large" in text:
        return 413
    if "empty file" in text:
        return 400
    if "not an image" in text:
        return 415
    return 422
