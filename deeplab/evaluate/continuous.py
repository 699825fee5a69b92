"""Continuous evaluation: wait for new checkpoints in a training directory, yield each once.

The protocol with the trainer:
- checkpoints are found as `resolve_checkpoint` finds them: the `checkpoint` state file of
  `tf.train.CheckpointManager` (written after the checkpoint itself is complete), else the
  newest `*.index` file (a model-zoo directory);
- when training has finished, the trainer writes an empty marker file `TRAINING_DONE`
  (`mark_training_done`) into the checkpoint directory *after* its final checkpoint. A
  watcher that sees the marker evaluates the newest checkpoint if it has not yet, then stops.
  A new training run into the same directory should delete the marker first
  (`clear_training_done`).

Like the original's `checkpoints_iterator`, a watcher yields only the newest checkpoint
(checkpoints saved while an evaluation ran are skipped, not queued) and at most one every
`interval_secs`; unlike it, it stops when training has finished or after `timeout_secs`
without a new checkpoint.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator

import tensorflow as tf

from deeplab.checkpoints.io import CheckpointError, resolve_checkpoint
from deeplab.utils.run_options import TRAINING_DONE, training_done

# Scalar step variables a checkpoint may hold, in order of preference.
_STEP_KEYS = ("step/.ATTRIBUTES/VARIABLE_VALUE", "global_step/.ATTRIBUTES/VARIABLE_VALUE",
              "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE", "global_step")


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """Prefix of the newest checkpoint in the directory, or None."""
    try:
        return resolve_checkpoint(checkpoint_dir)
    except CheckpointError:
        return None


def checkpoint_step(prefix: str) -> int | None:
    """Training step of a checkpoint: a stored scalar step variable, else the `-<n>` suffix.

    Returns None when neither exists (e.g. `model.ckpt` without a step).
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        for key in _STEP_KEYS:
            if key in shapes and not shapes[key]:
                return int(reader.get_tensor(key))
    except (tf.errors.OpError, ValueError):
        pass
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else None


def _check_directory(checkpoint_dir: str) -> None:
    if not checkpoint_dir:
        raise CheckpointError("no checkpoint directory given (--checkpoint_dir)")
    if not os.path.isdir(checkpoint_dir):
        raise CheckpointError(f"{checkpoint_dir}: no such directory (and no checkpoint prefix "
                              f"{checkpoint_dir}.index)")


def watch_checkpoints(checkpoint_dir: str, interval_secs: float = 300.0,
                      max_evaluations: int = 0, timeout_secs: float | None = None,
                      poll_secs: float | None = None, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> Iterator[str]:
    """Yields the prefix of each new newest checkpoint in `checkpoint_dir`, once each.

    Args:
      checkpoint_dir: directory a training run saves into.
      interval_secs: minimum time between the starts of two yields (eval_interval_secs).
      max_evaluations: stop after this many yields; 0 or less for no limit.
      timeout_secs: stop after this long without a new checkpoint; None waits forever
        (until TRAINING_DONE).
      poll_secs: how often to look for a new checkpoint (default min(interval, 10) s).
      sleep, clock: injectable for tests.

    Raises:
      CheckpointError: the directory does not exist, or training finished without leaving
        any checkpoint.
    """
    _check_directory(checkpoint_dir)
    poll = poll_secs if poll_secs is not None else max(0.1, min(interval_secs, 10.0))
    seen: set[str] = set()
    last_start = None
    idle_since = clock()
    waiting_logged = False
    while True:
        latest = latest_checkpoint(checkpoint_dir)
        if latest is not None and latest not in seen:
            if last_start is not None:
                _sleep_until(last_start + interval_secs, checkpoint_dir, poll, sleep, clock)
                latest = latest_checkpoint(checkpoint_dir) or latest
            seen.add(latest)
            last_start = clock()
            yield latest
            if 0 < max_evaluations <= len(seen):
                return
            idle_since, waiting_logged = clock(), False
            continue
        if training_done(checkpoint_dir):
            if latest_checkpoint(checkpoint_dir) not in seen | {None}:
                continue  # the final checkpoint landed just before the marker
            if latest is None:
                raise CheckpointError(f"{checkpoint_dir}: training finished ({TRAINING_DONE} "
                                      "is there) but the directory holds no checkpoint")
            logging.info("training has finished (%s); evaluated %d checkpoint(s)",
                         os.path.join(checkpoint_dir, TRAINING_DONE), len(seen))
            return
        if timeout_secs is not None and clock() - idle_since >= timeout_secs:
            logging.info("no new checkpoint in %s for %.0f s; stopping", checkpoint_dir,
                         timeout_secs)
            return
        if not waiting_logged:
            logging.info("waiting for a new checkpoint in %s (stops when %s appears)",
                         checkpoint_dir, TRAINING_DONE)
            waiting_logged = True
        sleep(poll)


def _sleep_until(deadline: float, checkpoint_dir: str, poll: float, sleep, clock) -> None:
    """Sleeps until `deadline`, in steps of `poll`, returning early once training is done."""
    while clock() < deadline and not training_done(checkpoint_dir):
        sleep(min(poll, deadline - clock()))


def checkpoints_to_evaluate(checkpoint_dir: str, max_evaluations: int = 0,
                            interval_secs: float = 300.0, timeout_secs: float | None = None,
                            **kwargs) -> Iterator[str]:
    """The checkpoints eval.py / vis.py should process, in order.

    - `checkpoint_dir` names a checkpoint prefix (not a directory): that checkpoint, once.
    - max_evaluations == 1: the newest checkpoint now, once; CheckpointError if there is none.
    - otherwise: `watch_checkpoints` (waits for checkpoints, stops on TRAINING_DONE).
    """
    if checkpoint_dir and not os.path.isdir(checkpoint_dir) \
            and os.path.exists(checkpoint_dir + ".index"):
        yield resolve_checkpoint(checkpoint_dir)
        return
    _check_directory(checkpoint_dir)
    if max_evaluations == 1:
        yield resolve_checkpoint(checkpoint_dir)
        return
    yield from watch_checkpoints(checkpoint_dir, interval_secs, max_evaluations, timeout_secs,
                                 **kwargs)
