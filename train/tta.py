"""Test-time augmentation for the teacher: better soft targets at no training cost.

A CNN trained on shifted and mirrored garments answers a little differently for each of
those views; averaging its logits over a few of them cancels part of that noise, so the
averaged answer is more accurate (and better calibrated) than the answer for the image
alone.  The students still see the image as it is: only their targets improve, and the
teacher only reads each view once (about half a minute per view on one core).

The views are the transforms the teacher was trained on, at their mildest: the mirror
image and whole-pixel shifts by one pixel (no resampling, so no blur).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: The views in the order they are taken: ``views=n`` uses the first ``n``.
#: (name, flip, dy, dx): the image, its mirror, then one-pixel shifts in four directions.
VIEWS: tuple[tuple[str, bool, int, int], ...] = (
    ("image", False, 0, 0), ("mirror", True, 0, 0),
    ("right", False, 0, 1), ("left", False, 0, -1),
    ("down", False, 1, 0), ("up", False, -1, 0))


def view(x: np.ndarray, flip: bool, dy: int, dx: int) -> np.ndarray:
    """``x`` (N, H, W) mirrored and/or moved by whole pixels, black coming in at the edge."""
    out = x[:, :, ::-1] if flip else x
    if dy or dx:
        moved = np.zeros_like(out)
        h, w = out.shape[1:]
        moved[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            out[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        out = moved
    return np.ascontiguousarray(out)


def view_logits(read: Callable[[np.ndarray], np.ndarray], x: np.ndarray, views: int
                ) -> np.ndarray:
    """The reader's logits for each of the first ``views`` views of ``x``: (views, N, 10)."""
    if not 1 <= views <= len(VIEWS):
        raise ValueError(f"views must be 1..{len(VIEWS)}, got {views}")
    return np.stack([read(view(x, flip, dy, dx)) for _, flip, dy, dx in VIEWS[:views]])


def averaged(read: Callable[[np.ndarray], np.ndarray], x: np.ndarray, views: int
             ) -> np.ndarray:
    """The reader's logits for ``x`` averaged over its first ``views`` views (float32)."""
    if views == 1:
        return read(x)
    return view_logits(read, x, views).mean(axis=0).astype(np.float32)
