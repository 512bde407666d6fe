"""Rendered sets: many renders in parallel, through the device pipeline, cached on disk.

The ``photo`` recipe trains on what the device makes of a photo, so every render goes
through :func:`fmnist_edge.edge.photo.open_image` and :func:`~fmnist_edge.edge.photo.to_pixels`,
the device's own code, with :data:`~fmnist_edge.edge.photo.TRAINING_METHOD` (one view: the
device's default answers for that view and others, see :func:`~fmnist_edge.edge.photo.to_views`).
Rendering 40,000 pictures takes minutes, so two caches sit in ``$FMNIST_RENDER_CACHE``
(default ``~/.cache/fmnist-edge/renders``):

- the JPEG renders, keyed by renderer version, seed, split and image indices;
- the 28x28 pixels the device pipeline made of them, keyed additionally by the pipeline
  version, so a new pipeline re-runs only the (cheap) preprocessing, not the rendering.

Work is split over at most two processes (the machines this runs on are small and shared);
each render's random stream depends only on (seed, split, index), so the result is the same
with any number of workers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.edge import atomic, photo
from fmnist_edge.train import render

CACHE_VAR = "FMNIST_RENDER_CACHE"
#: Worker processes; more would only fight over the cores of a small shared machine.
MAX_WORKERS = 2
_CHUNK = 500


def pipeline_version() -> str:
    """The pixels the photo recipe learns from (:data:`photo.TRAINING_METHOD`): a cache key
    and what manifests record."""
    return photo.TRAINING_METHOD


def cache_dir() -> Path:
    """Where renders are cached (created on first use)."""
    env = os.environ.get(CACHE_VAR)
    return Path(env) if env else Path.home() / ".cache" / "fmnist-edge" / "renders"


def renders(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, split: str,
            seed: int, workers: int = MAX_WORKERS) -> list[bytes]:
    """JPEG renders of ``images[indices]`` (cached)."""
    path = cache_dir() / f"{key('jpeg', split, seed, indices)}.npz"
    if path.is_file():
        with np.load(path) as z:
            blob, ends = z["blob"], z["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        return [blob[s:e].tobytes() for s, e in zip(starts, ends, strict=True)]
    out = _parallel(images, labels, indices, split, seed, workers)
    ends = np.cumsum([len(b) for b in out])
    save(path, blob=np.frombuffer(b"".join(out), np.uint8), ends=ends)
    return out


def pixels(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, split: str,
           seed: int, workers: int = MAX_WORKERS) -> np.ndarray:
    """(N, 28, 28) uint8: what the device pipeline makes of each render (cached)."""
    path = cache_dir() / f"{key(f'pixels-{pipeline_version()}', split, seed, indices)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return np.asarray(z["pixels"])
    jpegs = renders(images, labels, indices, split, seed, workers)
    chunks = [jpegs[i:i + _CHUNK] for i in range(0, len(jpegs), _CHUNK)]
    result = pool_map(to_device_pixels, chunks, workers)
    out = np.concatenate(result) if result else np.zeros((0, *photo.SHAPE), np.uint8)
    save(path, pixels=out)
    return out


def to_device_pixels(jpegs: list[bytes]) -> np.ndarray:
    """Decode and preprocess JPEG bytes exactly as ``edge-classify`` does a file."""
    out = np.zeros((len(jpegs), *photo.SHAPE), np.uint8)
    for i, data in enumerate(jpegs):
        out[i] = photo.to_pixels(photo.open_image(data, f"render {i}"), photo.TRAINING_METHOD)
    return out


def _render_chunk(args: tuple[np.ndarray, np.ndarray, np.ndarray, int, str]) -> list[bytes]:
    images, labels, indices, seed, split = args
    # images/labels arrive already sliced to this chunk; indices keep the global seeds
    return [render.render(img, int(lab), render.rng_for(seed, split, int(i)))
            for img, lab, i in zip(images, labels, indices, strict=True)]


def _parallel(images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
              split: str, seed: int, workers: int) -> list[bytes]:
    jobs = [(images[indices[s:s + _CHUNK]], labels[indices[s:s + _CHUNK]],
             indices[s:s + _CHUNK], seed, split) for s in range(0, len(indices), _CHUNK)]
    return [b for chunk in pool_map(_render_chunk, jobs, workers) for b in chunk]


def pool_map(fn: Callable[[Any], Any], jobs: list[Any], workers: int) -> list[Any]:
    """``map`` over a small spawn pool (never fork: the parent may hold TensorFlow threads)."""
    workers = max(1, min(workers, MAX_WORKERS, len(jobs)))
    if workers == 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))


def key(kind: str, split: str, seed: int, indices: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(indices, np.int64).tobytes()).hexdigest()[:16]
    return f"{kind}-r{render.RENDER_VERSION}-{split}-s{seed}-n{len(indices)}-{digest}"


def save(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
