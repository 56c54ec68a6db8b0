"""Why a training run must stop instead of being stored as finished.

A non-finite loss (``learning_rate=inf``, a huge learning rate, an overflow) or an epoch without a
single optimiser step (an empty training split, ``grad_accum`` larger than the number of batches with
the tail dropped) would otherwise end as a "finished" run with NaN or untrained metrics. Both are
:class:`TrainingStopped` errors (a :class:`UserError`: one line, exit 2), raised before anything is
stored, so no ``done`` marker is written and a rerun trains the seed again.
"""

from __future__ import annotations

import math

from bench.errors import UserError


class TrainingStopped(UserError):
    """Training of one seed cannot produce a valid result."""


def method_label(method_cls) -> str:
    return str(getattr(method_cls, "name", None) or method_cls.__name__)


def guarded_term(terms) -> str:
    """The loss term watched during training: the task (prediction) loss where a method reports it.

    Not ``total``: some objectives are legitimately infinite for a batch while the model is fine, e.g.
    MMIM's entropy ``-beta*H`` is +inf when a class's covariance is singular (as in MMSA), and its gradient
    reaches only parameters the main optimiser never steps. A diverging model makes the task loss
    non-finite on the next batch, and the validation loss is checked every epoch.
    """
    return "task" if "task" in terms else "total"


def check_loss(value: float, *, method: str, seed, epoch: int, which: str) -> None:
    """Raise when a training or validation loss is NaN or infinite."""
    if not math.isfinite(value):
        raise TrainingStopped(
            f"{method} seed {seed}: the {which} loss became {value} in epoch {epoch}; training stopped and "
            "nothing was stored (lower learning_rate, or check the data for extreme values)"
        )


def check_stepped(n_steps: int, *, method: str, seed, n_train: int, batch_size: int, grad_accum: int) -> None:
    """Raise after the first epoch when it took no optimiser step (every later epoch would take none)."""
    if n_steps == 0:
        n_batches = -(-n_train // batch_size)
        raise TrainingStopped(
            f"{method} seed {seed}: epoch 1 took no optimiser step ({n_train} training samples = {n_batches} "
            f"batches of {batch_size}, fewer than grad_accum={grad_accum} with the tail dropped), so the model "
            "would stay untrained; lower grad_accum or batch_size, or set grad_accum_drop_tail=false"
        )
