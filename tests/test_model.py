import json
import math
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras.pretrained import keras_model_variant
from inception_keras.summary import summary_rows

# Table 1 of the paper, typed in here independently of the package's own table:
# block: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, published params, published ops)
# (published params in the paper's K = 1024, ops in M = 10^6).
PAPER = {
    "3a": (64, 96, 128, 16, 32, 32, 159, 128),
    "3b": (128, 128, 192, 32, 96, 64, 380, 304),
    "4a": (192, 96, 208, 16, 48, 64, 364, 73),
    "4b": (160, 112, 224, 24, 64, 64, 437, 88),
    "4c": (128, 128, 256, 24, 64, 64, 463, 100),
    "4d": (112, 144, 288, 32, 64, 64, 580, 119),
    "4e": (256, 160, 320, 32, 128, 128, 840, 170),
    "5a": (256, 160, 320, 32, 128, 128, 1072, 54),
    "5b": (384, 192, 384, 48, 128, 128, 1388, 71),
}
STAGE = {"3": 8, "4": 16, "5": 32}  # the block's stride relative to the input


def out_channels(cfg):
    return cfg[0] + cfg[2] + cfg[4] + cfg[5]


def conv(cin, cout, k, hw, bn):
    """(all parameters, kernel weights, multiply-adds) of one conv unit at output size hw x hw."""
    weights = k * k * cin * cout
    params = weights + (4 * cout if bn else cout)  # BN: gamma, beta, moving mean and variance
    return params, weights, weights * hw * hw


def independent_counts(size=224, classes=1000, bn=False, aux=False):
    """Parameters, weights and multiply-adds of the whole network from the table above."""
    units = []
    hw = math.ceil(size / 2)
    units.append(conv(3, 64, 7, hw, bn))  # conv1
    hw = math.ceil(size / 4)
    units += [conv(64, 64, 1, hw, bn), conv(64, 192, 3, hw, bn)]  # conv2
    cin = 192
    aux_in = {}
    for name, cfg in PAPER.items():
        hw = math.ceil(size / STAGE[name[0]])
        n1, r3, n3, r5, n5, pp = cfg[:6]
        units += [
            conv(cin, n1, 1, hw, bn),
            conv(cin, r3, 1, hw, bn),
            conv(r3, n3, 3, hw, bn),
            conv(cin, r5, 1, hw, bn),
            conv(r5, n5, 5, hw, bn),
            conv(cin, pp, 1, hw, bn),
        ]
        cin = out_channels(cfg)
        aux_in[name] = (cin, hw)
    units.append((cin * classes + classes, cin * classes, cin * classes))  # fc
    params = sum(u[0] for u in units)
    weights = sum(u[1] for u in units)
    ops = sum(u[2] for u in units)
    if aux:
        for block in ("4a", "4d"):
            channels, hw = aux_in[block]
            pooled = (hw - 5) // 3 + 1 if hw >= 5 else 1
            params += conv(channels, 128, 1, pooled, bn)[0]
            params += pooled * pooled * 128 * 1024 + 1024 + 1024 * classes + classes
    return params, weights, ops


@pytest.mark.parametrize("variant", ["paper", "bn"])
@pytest.mark.parametrize("aux", [False, True])
@pytest.mark.parametrize("size", [224, 96, 299])
def test_output_shapes_and_parameter_count(variant, aux, size):
    model = ik.GoogLeNet(input_shape=(size, size, 3), classes=7, include_aux=aux, variant=variant)
    outputs = model(np.random.uniform(0, 255, (2, size, size, 3)).astype("float32"))
    outputs = outputs if aux else [outputs]
    assert len(outputs) == (3 if aux else 1)
    for out in outputs:
        assert tuple(out.shape) == (2, 7)
        np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
    expected_params = independent_counts(size, classes=7, bn=variant == "bn", aux=aux)[0]
    assert model.count_params() == expected_params


def test_block_outputs_match_table_1_at_224():
    model = ik.GoogLeNet(include_aux=True)
    expected = {
        "conv1": (112, 112, 64),
        "pool1": (56, 56, 64),
        "conv2": (56, 56, 192),
        "pool2": (28, 28, 192),
        "pool3": (14, 14, 480),
        "pool4": (7, 7, 832),
        "pool5": (1024,),
    }
    for name, cfg in PAPER.items():
        hw = 224 // STAGE[name[0]]
        expected[f"inception_{name}"] = (hw, hw, out_channels(cfg))
    for name, shape in expected.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name
    # The paper's aux heads: 5x5/3 average pool gives 4x4 at 224, then 1x1 conv to 128.
    assert tuple(model.get_layer("aux1_pool").output.shape[1:]) == (4, 4, 512)
    assert tuple(model.get_layer("aux2_pool").output.shape[1:]) == (4, 4, 528)
    assert tuple(model.get_layer("aux1_conv").output.shape[1:]) == (4, 4, 128)
    assert model.get_layer("aux1_fc1").units == 1024
    assert model.get_layer("aux1_dropout").rate == pytest.approx(0.7)
    assert model.get_layer("dropout").rate == pytest.approx(0.4)


def test_five_by_five_branches_are_five_by_five():
    model = ik.GoogLeNet()
    for name in PAPER:
        assert model.get_layer(f"inception_{name}_5x5").kernel_size == (5, 5)
        assert model.get_layer(f"inception_{name}_3x3").kernel_size == (3, 3)
        assert model.get_layer(f"inception_{name}_pool").pool_size == (3, 3)
    assert model.get_layer("conv1").kernel_size == (7, 7)
    assert model.get_layer("conv1").strides == (2, 2)
    for pool in ("pool1", "pool2", "pool3", "pool4"):
        assert model.get_layer(pool).pool_size == (3, 3) and model.get_layer(pool).strides == (2, 2)


def test_variants_differ_only_in_lrn_and_batch_norm():
    paper, bn = ik.GoogLeNet(variant="paper"), ik.GoogLeNet(variant="bn")
    lrn = [layer.name for layer in paper.layers if isinstance(layer, ik.LocalResponseNormalization)]
    assert lrn == ["norm1", "norm2"]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in paper.layers)
    assert not any(isinstance(layer, ik.LocalResponseNormalization) for layer in bn.layers)
    convs = [layer for layer in bn.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 57
    for layer in convs:
        assert isinstance(bn.get_layer(f"{layer.name}_bn"), keras.layers.BatchNormalization)
        assert not layer.use_bias
    # Same convolutions, same shapes: the topology is shared.
    assert [(layer.name, layer.kernel.shape) for layer in convs] == [
        (layer.name, layer.kernel.shape)
        for layer in paper.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]


def test_relu_after_every_convolution():
    model = ik.GoogLeNet(include_aux=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.activation is keras.activations.relu, layer.name


@pytest.mark.parametrize("variant", ["bn", "slim"])
def test_batch_norm_variants_normalise_before_the_relu(variant):
    # Convolution (linear) -> its BatchNorm -> ReLU, for every convolution, aux heads included.
    model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=4, include_aux=True, variant=variant)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 57 + 2
    for conv in convs:
        norm, relu = model.get_layer(f"{conv.name}_bn"), model.get_layer(f"{conv.name}_relu")
        assert conv.activation is keras.activations.linear, conv.name
        assert norm.input is conv.output and relu.input is norm.output, conv.name
        assert relu.activation is keras.activations.relu, conv.name
    # On real numbers: the stem's normalised maps have negatives, which only the ReLU removes.
    names = ["conv1_bn", "conv1_relu"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    x = np.random.default_rng(5).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    normalised, activated = (keras.ops.convert_to_numpy(t) for t in probe(x, training=True))
    assert normalised.min() < 0
    np.testing.assert_array_equal(activated, np.maximum(normalised, 0))


def test_multiply_adds_and_weights_match_independent_count():
    for variant in ("paper", "bn"):
        rows = summary_rows(ik.GoogLeNet(variant=variant))
        _, weights, ops = independent_counts(224, bn=variant == "bn")
        assert sum(r.params for r in rows) == weights
        assert sum(r.ops for r in rows) == ops
    # The usual headline figures for GoogLeNet: ~7.0M weights and ~1.58G multiply-adds at 224.
    assert round(weights / 1e6, 1) == 7.0 and round(ops / 1e9, 2) == 1.58


def test_per_block_figures_against_the_published_table():
    rows = {r.name: r for r in summary_rows(ik.GoogLeNet())}
    for name, cfg in PAPER.items():
        row = rows[f"inception_{name}"]
        paper_params, paper_ops = cfg[6] * 1024, cfg[7] * 1e6
        # Slack: the paper's own table is inconsistent with its channel counts (4c, 5a).
        assert abs(row.params - paper_params) / paper_params <= 0.10, name
        assert abs(row.ops - paper_ops) / paper_ops <= 0.07, name
        assert tuple(row.filters.values()) == cfg[:6]


@pytest.mark.parametrize(
    "pooling, shape", [(None, (7, 7, 1024)), ("avg", (1024,)), ("max", (1024,))]
)
def test_headless_feature_extractor(pooling, shape):
    model = ik.GoogLeNet(include_top=False, pooling=pooling)
    assert tuple(model.output.shape[1:]) == shape
    assert "fc" not in [layer.name for layer in model.layers]


def test_any_input_size_without_aux_heads():
    model = ik.GoogLeNet(input_shape=(None, None, 3), classes=5)
    for size in (64, 137):
        out = model(np.zeros((1, size, size, 3), "float32"))
        assert tuple(out.shape) == (1, 5)


@pytest.mark.slow  # traces a full training step: ~20 s
def test_small_input_with_aux_heads_trains():
    keras.utils.set_random_seed(0)
    model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=4, include_aux=True, variant="bn")
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss={name: "sparse_categorical_crossentropy" for name in model.output_names},
        loss_weights={"predictions": 1.0, "aux1": 0.3, "aux2": 0.3},
    )
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    y = np.array([0, 1, 2, 3])
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights}
    losses = [float(model.train_on_batch(x, (y, y, y))[0]) for _ in range(8)]
    # Four images memorised: the loss falls, and every head's weights moved (all three train).
    assert losses[-1] < 0.5 * losses[0], losses
    for name in ("fc", "aux1_fc2", "aux2_fc2", "conv1"):
        kernel = next(w for w in model.trainable_weights if w.path == f"{name}/kernel")
        assert not np.allclose(keras.ops.convert_to_numpy(kernel), before[kernel.path]), name


def test_input_tensor_and_inception_block():
    inputs = keras.Input((28, 28, 192))
    out = ik.inception_block(inputs, (64, 96, 128, 16, 32, 32), name="inception_3a")
    block = keras.Model(inputs, out)
    assert tuple(out.shape[1:]) == (28, 28, 256)
    assert block.get_layer("inception_3a_5x5").kernel_size == (5, 5)
    assert block.count_params() == sum(
        k * k * a * b + b
        for a, b, k in [
            (192, 64, 1),
            (192, 96, 1),
            (96, 128, 3),
            (192, 16, 1),
            (16, 32, 5),
            (192, 32, 1),
        ]
    )
    tensor = keras.Input((96, 96, 3))
    model = ik.GoogLeNet(input_tensor=tensor, classes=3)
    assert model.inputs[0] is tensor
    assert tuple(model.output.shape) == (None, 3)


def test_classifier_activation_none_gives_logits():
    kwargs = dict(input_shape=(64, 64, 3), classes=4, include_aux=True)
    logits_model = ik.GoogLeNet(classifier_activation=None, **kwargs)
    softmax_model = ik.GoogLeNet(**kwargs)
    softmax_model.set_weights(logits_model.get_weights())
    x = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # Every head, aux ones included: softmax of the logits is the other model's output.
    for logits, probabilities in zip(logits_model(x), softmax_model(x)):
        logits = keras.ops.convert_to_numpy(logits)
        expected = np.exp(logits - logits.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(probabilities), expected, atol=1e-6)
        assert not np.allclose(logits.sum(-1), 1.0)


@pytest.mark.slow
def test_save_and_load_keras_file_safe_mode(tmp_path):
    model = ik.GoogLeNet(input_shape=(96, 96, 3), classes=5, include_aux=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    expected = [keras.ops.convert_to_numpy(o) for o in model(x)]
    path = tmp_path / "googlenet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for got, want in zip(loaded(x), expected):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), want)


@pytest.mark.slow
def test_a_keras_file_with_keras_own_batch_norm_loads(tmp_path):
    # A bn-variant file whose batch norms name Keras' own layer, as a GoogLeNet built with
    # keras.layers.BatchNormalization saves them, loads, predicts the same and reads as "bn".
    model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=5, variant="bn")
    x = np.random.default_rng(4).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    saved = tmp_path / "ours.keras"
    model.save(saved)
    keras_own = keras.saving.serialize_keras_object(keras.layers.BatchNormalization())
    with zipfile.ZipFile(saved) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    norms = [
        layer for layer in config["config"]["layers"] if layer["class_name"] == "BatchNormalization"
    ]
    assert len(norms) == 3 + 9 * 6  # after each of the stem's 3 and the 9 blocks' 6 convolutions
    for layer in norms:
        assert layer["registered_name"] != keras_own["registered_name"]
        layer.update(module=keras_own["module"], registered_name=keras_own["registered_name"])
    files["config.json"] = json.dumps(config).encode()
    path = tmp_path / "keras_own.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)

    loaded = keras.saving.load_model(path, safe_mode=True)
    assert {type(layer) for layer in loaded.layers if "_bn" in layer.name} == {
        keras.layers.BatchNormalization
    }
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert keras_model_variant(path) == "bn"


@pytest.mark.slow
def test_weights_only_round_trip(tmp_path):
    kwargs = dict(input_shape=(96, 96, 3), classes=5, variant="bn")
    model = ik.GoogLeNet(**kwargs)
    x = np.random.default_rng(2).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    path = str(tmp_path / "googlenet.weights.h5")
    model.save_weights(path)
    fresh = ik.GoogLeNet(**kwargs)
    assert not np.allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    reloaded = ik.GoogLeNet(weights=path, **kwargs)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_gradients_reach_the_aux_heads():
    model = ik.GoogLeNet(input_shape=(96, 96, 3), classes=4, include_aux=True)
    x = tf.random.uniform((2, 96, 96, 3), 0, 255)
    y = tf.constant([1, 3])
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def gradients(output_index):
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            loss = loss_fn(y, outputs[output_index])
        return dict(
            zip(
                [v.path for v in model.trainable_variables],
                tape.gradient(loss, model.trainable_variables),
            )
        )

    def norm(grads, layer):
        g = grads[model.get_layer(layer).kernel.path]
        return 0.0 if g is None else float(tf.norm(g))

    aux1 = gradients(1)
    # aux1's loss trains its own head and the trunk below 4a, nothing above it.
    assert norm(aux1, "aux1_fc2") > 0 and norm(aux1, "aux1_conv") > 0
    assert norm(aux1, "inception_3a_5x5") > 0 and norm(aux1, "conv1") > 0
    assert norm(aux1, "inception_4b_1x1") == 0 and norm(aux1, "fc") == 0
    aux2 = gradients(2)
    assert norm(aux2, "aux2_fc1") > 0 and norm(aux2, "inception_4d_5x5") > 0
    assert norm(aux2, "aux1_fc1") == 0


def test_inference_model_strips_aux_heads():
    model = ik.GoogLeNet(input_shape=(96, 96, 3), classes=4, include_aux=True)
    inference = ik.inference_model(model)
    assert len(inference.outputs) == 1
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
    x = np.random.default_rng(3).uniform(0, 255, (3, 96, 96, 3)).astype("float32")
    main = keras.ops.convert_to_numpy(model(x, training=False)[0])
    np.testing.assert_allclose(inference.predict(x, verbose=0), main, rtol=1e-6, atol=1e-7)
    # Deterministic: dropout has no effect at inference.
    np.testing.assert_array_equal(inference.predict(x, verbose=0), inference.predict(x, verbose=0))
    assert ik.inference_model(inference) is inference


def test_inference_model_of_a_mixed_precision_model_is_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=4, include_aux=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    inference = ik.inference_model(model)
    assert {layer.dtype_policy.name for layer in inference.layers} == {"float32"}
    assert inference.output.dtype == "float32"
    assert [w.name for w in inference.weights] == [w.name for w in inference_weights(model)]
    for copy, original in zip(inference.weights, inference_weights(model)):
        np.testing.assert_array_equal(copy.numpy(), original.numpy())
    x = np.random.default_rng(4).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    mixed = keras.ops.convert_to_numpy(model(x, training=False)[0]).astype("float32")
    # bfloat16 keeps 8 bits of mantissa: the float32 copy agrees to bfloat16 rounding only.
    np.testing.assert_allclose(inference.predict(x, verbose=0), mixed, atol=0.02)
    assert ik.inference_model(inference) is inference  # already float32: unchanged


def inference_weights(model):
    """The weights of ``model``'s layers that the main head uses (aux heads excluded)."""
    return [w for layer in model.layers if not layer.name.startswith("aux") for w in layer.weights]


def test_feature_model_end_points():
    model = ik.GoogLeNet(input_shape=(96, 96, 3))
    features = ik.feature_model(model, ["inception_3b", "inception_4e", "pool5"])
    out = features(np.zeros((1, 96, 96, 3), "float32"))
    assert tuple(out["inception_3b"].shape) == (1, 12, 12, 480)
    assert tuple(out["inception_4e"].shape) == (1, 6, 6, 832)
    assert tuple(out["pool5"].shape) == (1, 1024)
    with pytest.raises(ValueError, match="inception_9z"):
        ik.feature_model(model, ["inception_9z"])


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(classes=0), "classes"),
        (dict(classes=2.5), "classes"),
        (dict(variant="resnet"), "variant"),
        (dict(pooling="avg"), "pooling"),
        (dict(include_top=False, pooling="sum"), "pooling"),
        (dict(input_shape=(16, 16, 3)), "input_shape"),
        (dict(input_shape=(224, 224, 1)), "input_shape"),
        (dict(input_shape=(None, None, 3), include_aux=True), "input_shape"),
        (dict(include_top=False, include_aux=True), "include_aux"),
        (dict(weights="/nonexistent/googlenet.weights.h5"), "weights"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ik.GoogLeNet(**kwargs)


def test_bad_block_config():
    with pytest.raises(ValueError, match="`config`"):
        ik.inception_block(keras.Input((8, 8, 16)), (1, 2, 3))
    with pytest.raises(ValueError, match="`config`"):
        ik.inception_block(keras.Input((8, 8, 16)), (1, 2, 0, 4, 5, 6))


@pytest.mark.slow
@pytest.mark.parametrize(
    "use", ["inception_keras.GoogLeNet", "__import__('inception_keras.model')"]
)
def test_other_backend_fails_at_first_use_with_a_fix(use):
    # Other backends (jax, torch) are not installed here: make Keras report one. The package and
    # its configuration import without Keras; the first model-building module refuses.
    code = (
        "import keras; keras.backend.backend = lambda: 'jax'\n"
        "import inception_keras\n"
        "inception_keras.TrainConfig(epochs=1)\n"
        f"{use}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "KERAS_BACKEND=tensorflow" in result.stderr and "'jax'" in result.stderr
    ok = subprocess.run(
        [sys.executable, "-c", "import inception_keras as ik; ik.GoogLeNet"], capture_output=True
    )
    assert ok.returncode == 0
