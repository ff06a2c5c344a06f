"""Keras' AdamW and SGD with each variable's update as one TensorFlow kernel.

Keras 3 writes the Adam update as about ten element-wise ops per variable (subtract, multiply,
square, sqrt, divide, three assignments) and SGD with momentum as five, each a pass over the whole
variable; TensorFlow's own kernels (``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``) do the
same arithmetic in one pass, and Keras no longer calls them. With GoogLeNet's millions of
parameters those passes are a measurable share of a small-image training step on a CPU
(docs/performance.md, "The optimizer and the schedule in a training step"). Keras' weight decay
and EMA updates are left as Keras writes them.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="inception_keras")
class FusedAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW``: the same arguments, slots and results (to float rounding),
    its update run by TensorFlow's fused Adam kernel. AMSGrad and sparse gradients take Keras'
    own path."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        # The kernel's update is Keras': m, v moving averages, then
        # var -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


@keras.saving.register_keras_serializable(package="inception_keras")
class FusedSGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD``: the same arguments, slots and results (to float rounding), its
    momentum update run by TensorFlow's fused kernel. Plain SGD (momentum 0) and sparse gradients
    take Keras' own path."""

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        # Keras' update: m = momentum * m - lr * g, then var += m (Nesterov:
        # var += momentum * m - lr * g with the new m).
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=self.momentums[self._get_variable_index(variable)].handle,
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov,
        )


def make_optimizer(config, learning_rate, ema=None):
    """The optimizer a training configuration names (a :class:`~inception_keras.run_config.
    TrainConfig`): :class:`FusedSGD` with its momentum for ``"sgd"``, else :class:`FusedAdamW`,
    with its weight decay, at ``learning_rate`` (a number or a schedule); weights averaged if
    ``ema`` (default: ``config.ema``) with ``config.ema_momentum``."""
    ema = config.ema if ema is None else ema
    common = dict(learning_rate=learning_rate, use_ema=ema, ema_momentum=config.ema_momentum)
    if config.optimizer == "sgd":
        return FusedSGD(
            momentum=config.momentum, weight_decay=config.weight_decay or None, **common
        )
    return FusedAdamW(weight_decay=config.weight_decay, **common)
