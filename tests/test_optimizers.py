import keras
import numpy as np
import pytest
import tensorflow as tf

from inception_keras.optimizers import FusedAdamW, FusedSGD
from inception_keras.schedules import WarmupCosineDecay

SHAPES = [(3, 3, 4, 8), (8,), (17,)]


def _train(optimizer_class, grads, init, **options):
    """Variables, first and second moments and EMA copies after one ``apply`` per gradient list
    inside a ``tf.function``, as a train step runs it."""
    optimizer = optimizer_class(
        learning_rate=WarmupCosineDecay(1e-2, decay_steps=15, warmup_steps=5),
        use_ema=True,
        ema_momentum=0.9,
        **options,
    )
    variables = [keras.Variable(x) for x in init]
    optimizer.build(variables)
    step = tf.function(lambda g: optimizer.apply(g, variables))
    for g in grads:
        step([tf.constant(x) for x in g])
    slots = (
        getattr(optimizer, "_momentums", None) or optimizer.momentums,  # AdamW's, SGD's
        getattr(optimizer, "_velocities", []),
        optimizer._model_variables_moving_average,
    )
    return [v.numpy() for v in variables] + [s.numpy() for group in slots for s in group]


@pytest.mark.parametrize(
    "ours, theirs, options",
    [
        (FusedAdamW, keras.optimizers.AdamW, dict(weight_decay=0.1)),
        (FusedAdamW, keras.optimizers.AdamW, dict(weight_decay=0.0, beta_2=0.99)),
        (FusedSGD, keras.optimizers.SGD, dict(momentum=0.9, weight_decay=0.1)),
        (FusedSGD, keras.optimizers.SGD, dict(momentum=0.5, nesterov=True)),
    ],
)
def test_fused_optimizer_matches_keras(ours, theirs, options):
    """Keras' own optimizer is the oracle: the same variables, slots and averages after 20 steps
    of random gradients through warm-up and decay, to float32 rounding."""
    rng = np.random.default_rng(0)
    init = [rng.normal(size=s).astype("float32") for s in SHAPES]
    grads = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(20)]
    got = _train(ours, grads, init, **options)
    expected = _train(theirs, grads, init, **options)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = max(np.abs(a - b).max() for a, b in zip(got, init))  # the variables come first
    assert moved > 0.05  # 20 steps at lr up to 1e-2 moved the weights well beyond the tolerance


@pytest.mark.parametrize(
    "optimizer",
    [
        FusedAdamW(learning_rate=1e-3, weight_decay=0.05, beta_2=0.99),
        FusedSGD(learning_rate=1e-2, momentum=0.9, nesterov=True),
    ],
)
def test_fused_optimizer_round_trips_through_its_config(optimizer):
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is type(optimizer)
    assert clone.get_config() == optimizer.get_config()
