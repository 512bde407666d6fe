"""The distillation pool: augmented copies of the training split and the teacher's logits.

"A good teacher is patient and consistent" (Beyer et al., 2022): a student distils best when
it sees many views of each image *and* the teacher's answer for exactly the view it sees.
Asking the teacher every epoch for fresh views made a run four times slower, so the views
are made once: copy 0 is the training split as it is, copies 1..K-1 are augmented
(:mod:`augment`), and the teacher reads every copy once.  Each epoch then shows every
training image once, in one of its K views chosen at random, with that view's logits.
Everything is a pure function of ``(seed, epoch)``, so two runs see the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fmnist_edge.train import augment
from fmnist_edge.train.augment import Augment

#: Added to the seed's second word, so pool copies never reuse an epoch's augmentation.
COPY_STREAM = 10_000
#: The same, for the per-epoch choice of view.
VIEW_STREAM = 2_000_000


@dataclass
class Pool:
    """K views of the N training images, (K, N, 28, 28), and their logits (K, N, 10)."""

    images: np.ndarray
    logits: np.ndarray | None  # None without a teacher (labels only)

    @property
    def copies(self) -> int:
        """How many views of each image the pool holds."""
        return len(self.images)

    def epoch(self, seed: int, epoch: int, order: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """Epoch ``epoch``'s images (one view each, in ``order``) and their logits."""
        view = np.random.default_rng([seed, VIEW_STREAM + epoch]).integers(
            0, self.copies, len(order))
        logits = None if self.logits is None else self.logits[view, order]
        return self.images[view, order], logits


def build(x: np.ndarray, aug: Augment, copies: int, seed: int,
          teacher_logits: Callable[[np.ndarray], np.ndarray] | None) -> Pool:
    """The pool: ``x`` itself plus ``copies - 1`` augmented views, read by the teacher."""
    views = [x] + [augment.transform(x, aug, np.random.default_rng([seed, COPY_STREAM + k]))
                   for k in range(1, copies)]
    images = np.stack(views)
    logits = None if teacher_logits is None else np.stack([teacher_logits(v) for v in views])
    return Pool(images=images, logits=logits)
