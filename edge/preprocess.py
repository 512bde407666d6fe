"""All preprocessing, in one place: how pixels become model input and outputs become scores.

The stages, each a plain function:

1. **image → pixels**: any picture becomes a 28x28 uint8 array, light garment on a dark
   background, as Fashion-MNIST stores it (photo pipeline below).
2. **pixels → tensor** (:func:`to_input`): ``float = pixel * scale + offset`` from the
   manifest's ``preprocessing``, then, for an int8 artifact, quantised with that artifact's
   input scale and zero point.
3. **raw output → probabilities** (:func:`to_probabilities`): dequantised for int8 outputs;
   then, on the device, the answers for a photo's views combined (:func:`combine_views`)
   and temperature-scaled (:func:`calibrate`) by the manifest's ``calibration``.

Files, camera frames, export verification and benchmarks all call these, so training-time
and device-time preprocessing cannot drift apart.
"""

from __future__ import annotations

import numpy as np

from fmnist_edge.edge.manifest import Preprocessing, TensorSpec

_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8}


def pixels_to_float(pixels: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """(N, 28, 28) uint8 → float32 exactly as in training (``x / 255`` for the tutorial)."""
    return pixels.astype(np.float32) * np.float32(pre.scale) + np.float32(pre.offset)


def to_input(pixels: np.ndarray, pre: Preprocessing, spec: TensorSpec) -> np.ndarray:
    """Turn (N, 28, 28) uint8 pixels into the exact tensor one artifact expects."""
    x = pixels_to_float(pixels, pre)
    if spec.quantized:
        info = np.iinfo(_NP_DTYPES[spec.dtype])  # type: ignore[type-var]
        q = np.round(x / np.float32(spec.scale)) + spec.zero_point
        return np.clip(q, info.min, info.max).astype(_NP_DTYPES[spec.dtype])
    return x.astype(_NP_DTYPES.get(spec.dtype, np.float32))


def to_probabilities(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Model output → float32 class probabilities (dequantised for int8 outputs)."""
    if spec.quantized:
        return ((raw.astype(np.float32) - spec.zero_point) * np.float32(spec.scale))
    return raw.astype(np.float32)


def calibrate(probs: np.ndarray, temperature: float, floor: float = 0.0) -> np.ndarray:
    """Temperature scaling of softmax outputs: ``p_T ∝ p ** (1 / T)`` along the last axis.

    The same as dividing the logits by T (the models end in a softmax, so the logits are
    ``log p`` up to a constant).  T > 1 softens over-confident answers; the ranking, hence
    the accuracy, never changes.  ``floor`` stands in for probabilities that came out as 0:
    an int8 output of 0 means "under one quantisation step", not impossible, and 0 stays 0
    at any temperature (use :func:`probability_floor`).
    """
    if temperature == 1.0:
        return probs
    base = np.maximum(probs, np.float32(floor))
    scaled = np.power(base, np.float32(1.0 / temperature))
    total = scaled.sum(axis=-1, keepdims=True)
    return np.where(total > 0, scaled / np.where(total > 0, total, 1.0), probs).astype(np.float32)


def combine_views(probs: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """One answer from the answers for several views of a photo, (V, C) → (C,): the
    normalised geometric mean (the mean of the logits), so a class one view rules out
    stays unlikely, and views that disagree give a less confident answer.  ``floor`` as in
    :func:`calibrate`; one view comes back unchanged."""
    if len(probs) == 1:
        return probs[0]
    logs = np.log(np.maximum(probs, np.float32(max(floor, 1e-6))))
    mean = logs.mean(axis=0)
    p = np.exp(mean - mean.max())
    return (p / p.sum()).astype(np.float32)


def probability_floor(spec: TensorSpec) -> float:
    """Half a quantisation step of an int8 output (the expected value of a true probability
    that rounded to 0), else 0."""
    return spec.scale / 2 if spec.quantized else 0.0
