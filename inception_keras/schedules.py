"""Learning-rate schedules of the training recipes that Keras does not offer in a cheap form.

Keras' ``CosineDecay(warmup_target=...)`` computes the same curve as :class:`WarmupCosineDecay`,
but through a graph ``cond``; optimizers read their schedule once per variable (AdamW's weight
decay does), so a train step traces and runs that ``cond`` for each of GoogLeNet's ~190 trainable
variables, which makes the step's first call (tracing) much slower. This one is branch-free
arithmetic, computed once per traced function rather than once per variable.
"""

import math

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="inception_keras")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then a cosine from ``peak`` to
    ``alpha * peak`` over ``decay_steps`` (held there afterwards).

    Args:
        peak: the learning rate at the end of the warm-up.
        decay_steps: length of the cosine part, in steps (at least 1).
        warmup_steps: length of the warm-up, in steps (0: start at ``peak``).
        alpha: the final learning rate as a fraction of ``peak``.
    """

    def __init__(self, peak, decay_steps, warmup_steps=0, alpha=0.0):
        self.peak = float(peak)
        self.decay_steps = max(1, int(decay_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.alpha = float(alpha)
        self._traced = None  # (graph, step, value) of the last call inside a traced function

    def __call__(self, step):
        # Inside one traced function an optimizer asks once per variable, always before it
        # increments the step counter, so the graph's first answer serves the rest: the step
        # traces (and runs) one copy of the schedule instead of ~190.
        graph = tf.compat.v1.get_default_graph() if tf.inside_function() else None
        traced = self._traced
        if graph is not None and traced is not None and traced[0] is graph and traced[1] is step:
            return traced[2]
        value = self._value(step)
        if graph is not None:
            self._traced = (graph, step, value)
        return value

    def __getstate__(self):  # copies carry the settings, not a tensor of some traced graph
        return dict(self.__dict__, _traced=None)

    def _value(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        warming = self.peak * step / max(warmup, 1.0)
        progress = ops.clip((step - warmup) / self.decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decayed = self.peak * ((1.0 - self.alpha) * cosine + self.alpha)
        return ops.where(step < warmup, warming, decayed)

    def get_config(self):
        return {
            "peak": self.peak,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "alpha": self.alpha,
        }
