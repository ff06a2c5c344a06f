"""TFLite and ONNX exporters: names, numerics against Keras, quantization, builtin ops, atomicity.

Small 64x64, 5-class models keep this file fast. The ``paper`` model (with LRN and aux heads, so
the exporters must strip them) is trained for a few steps on rendered shapes so its predictions
differ between images; with untrained weights every image gets the same top-1 and an agreement
rate would measure nothing. Run with ``-s`` to see the sizes and agreement figures.
"""

import collections
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras import preprocessing, shapes
from inception_keras.export import onnx as onnx_export
from inception_keras.export import tflite

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

SIZE, CLASSES = 64, 5


def rendered(count, seed, size=SIZE):
    """Rendered shapes images of the first CLASSES classes, float32 [count, size, size, 3]."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % CLASSES
    return shapes.render(labels, rng, size).astype("float32"), labels


@pytest.fixture(scope="module")
def paper_model():
    keras.utils.set_random_seed(0)
    model = ik.GoogLeNet(
        input_shape=(SIZE, SIZE, 3), classes=CLASSES, include_aux=True, variant="paper"
    )
    fit_classifier(model, *rendered(240, seed=1))
    return model


def fit_classifier(model, images, labels, logit_scale=4.0):
    """Sets ``fc`` to class prototypes on the random ``pool5`` features (the centred class means;
    far cheaper than training), scaled to confident logits: predictions then depend on the image,
    not on one dominant class. Prototypes follow the features' main directions, so unlike a
    least-squares fit they do not amplify float32 rounding into the probabilities."""
    features = ik.feature_model(model, ["pool5"]).predict(images, verbose=0)["pool5"]
    mean = features.mean(0)
    kernel = (features - mean).T @ (np.eye(CLASSES)[labels] - 1.0 / CLASSES)
    kernel *= logit_scale / ((features - mean) @ kernel).std()
    model.get_layer("fc").set_weights(
        [kernel.astype("float32"), (-mean @ kernel).astype("float32")]
    )


@pytest.fixture(scope="module")
def bn_model():
    keras.utils.set_random_seed(1)
    return ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, variant="bn")


@pytest.fixture(scope="module")
def held_out():
    return rendered(40, seed=2)[0]  # a different random stream from the training images


@pytest.fixture(scope="module")
def representative():
    """Calibration images the way the CLI gets them: an (images, labels) pipeline of larger
    renders through the evaluation transform, as ``load_data`` with ``augment=None`` gives."""
    images, labels = rendered(24, seed=3, size=80)
    dataset = (
        tf.data.Dataset.from_tensor_slices((images.astype("uint8"), labels))
        .map(lambda image, label: (preprocessing.eval_transform(image, SIZE), label))
        .batch(8)
    )
    return tflite.representative_dataset(dataset, count=20)


def test_representative_dataset_yields_single_eval_images(representative):
    batches = list(representative())
    assert len(batches) == 20  # capped at `count`
    assert all(b.shape == (1, SIZE, SIZE, 3) and b.dtype == np.float32 for b in batches)
    assert 0 <= min(b.min() for b in batches) and max(b.max() for b in batches) <= 255
    assert np.std(batches[0]) > 1  # real images, not blank


@pytest.fixture(scope="module")
def paper_tflite(paper_model, representative, tmp_path_factory):
    """Every TFLite flavour of the paper model, converted once: name -> path."""
    root = tmp_path_factory.mktemp("tflite")
    flavours = {
        "float32": {},
        "float16": {},
        "dynamic_int8": {},
        "int8": dict(representative_data=representative),
        "int8_io": dict(representative_data=representative, int8_io=True),
    }
    paths = {}
    for name, kwargs in flavours.items():
        quantization = "int8" if name.startswith("int8") else name
        paths[name] = tflite.export_tflite(
            paper_model, root / f"{name}.tflite", quantization, **kwargs
        )
        print(f"\nTFLite {name}: {os.path.getsize(paths[name]) / 1e6:.2f} MB")
    return paths


def keras_probabilities(model, images):
    return ik.inference_model(model).predict(images, verbose=0)


def top1_agreement(model, runner, images):
    """Share of images whose top-1 matches Keras, and the number of distinct Keras top-1 classes;
    prints the largest probability difference too."""
    expected, got = keras_probabilities(model, images), runner(images)
    print(f"\nmax |probability difference| {np.abs(expected - got).max():.4f}", end="")
    expected_top1 = expected.argmax(-1)
    return float(np.mean(expected_top1 == got.argmax(-1))), len(set(expected_top1))


# ---------------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------------
def test_paper_model_is_not_degenerate(paper_model, held_out):
    # Otherwise the agreement tests below would pass for any output.
    assert len(set(keras_probabilities(paper_model, held_out).argmax(-1))) >= 3


def test_float32_tflite_signature_and_numerics(paper_tflite, paper_model, held_out):
    runner = tflite.TFLiteRunner(paper_tflite["float32"], num_threads=1)
    assert runner.input_details["shape_signature"].tolist() == [-1, SIZE, SIZE, 3]
    assert runner.output_details["shape_signature"].tolist() == [-1, CLASSES]
    for batch in (held_out[:1], held_out[:3]):
        got = runner(batch)
        assert got.shape == (len(batch), CLASSES) and got.dtype == np.float32
        np.testing.assert_allclose(got, keras_probabilities(paper_model, batch), rtol=0, atol=1e-5)


def test_float32_tflite_bn_variant(bn_model, held_out, tmp_path):
    path = tflite.export_tflite(bn_model, tmp_path / "bn.tflite")
    runner = tflite.TFLiteRunner(path)
    for batch in (held_out[:1], held_out[:3]):
        np.testing.assert_allclose(
            runner(batch), keras_probabilities(bn_model, batch), rtol=0, atol=1e-5
        )
    assert "LOCAL_RESPONSE_NORMALIZATION" not in tflite.ops(path)


@pytest.mark.parametrize("flavour, min_agreement", [("float16", 0.9), ("dynamic_int8", 0.8)])
def test_reduced_precision_tflite_agrees(
    paper_tflite, paper_model, held_out, flavour, min_agreement
):
    runner = tflite.TFLiteRunner(paper_tflite[flavour])
    probabilities = runner(held_out[:3])
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    agreement, classes_seen = top1_agreement(paper_model, runner, held_out)
    print(
        f"\n{flavour}: top-1 agreement with Keras {agreement:.3f} on {len(held_out)} images "
        f"({classes_seen} distinct Keras top-1 classes)"
    )
    assert agreement >= min_agreement


@pytest.mark.parametrize("flavour, io_dtype", [("int8", np.float32), ("int8_io", np.int8)])
def test_full_int8_tflite(paper_tflite, paper_model, held_out, flavour, io_dtype):
    runner = tflite.TFLiteRunner(paper_tflite[flavour])
    assert runner.input_details["dtype"] == io_dtype and runner.output_details["dtype"] == io_dtype
    for batch in (held_out[:1], held_out[:3]):
        probabilities = runner(batch)
        assert probabilities.shape == (len(batch), CLASSES) and probabilities.dtype == np.float32
        # int8 output steps are 1/256: the sum is 1 up to a few steps.
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=0.03)
    agreement, classes_seen = top1_agreement(paper_model, runner, held_out)
    print(f"\n{flavour}: top-1 agreement with Keras {agreement:.3f} ({classes_seen} classes)")
    assert agreement >= 0.8  # loose; the 95% target is checked on a trained model by `verify`


def test_uint8_io_on_a_tiny_model(tmp_path):
    model = tiny_model()
    images = rendered(6, seed=4, size=32)[0]
    path = tflite.export_tflite(
        model, tmp_path / "u8.tflite", "int8", representative_data=lambda: images, int8_io="uint8"
    )
    runner = tflite.TFLiteRunner(path)
    assert runner.input_details["dtype"] == np.uint8 and runner.output_details["dtype"] == np.uint8
    # Output steps are 1/256; quantizing the input costs a little more.
    np.testing.assert_allclose(runner(images), model.predict(images, verbose=0), atol=0.02)


@pytest.mark.parametrize("flavour", ["float32", "int8"])
def test_tflite_runner_without_xnnpack_computes_the_same(paper_tflite, held_out, flavour):
    default = tflite.TFLiteRunner(paper_tflite[flavour])(held_out[:2])
    builtin = tflite.TFLiteRunner(paper_tflite[flavour], num_threads=1, xnnpack=False)
    # Float kernels differ in summation order only. int8 kernels round differently (XNNPACK's
    # requantization is not TFLite's reference one) and that compounds over 57 layers: up to 0.105
    # seen on one of the two images (this untrained network's probabilities are soft).
    atol = 1e-5 if flavour == "float32" else 0.15
    outputs = builtin(held_out[:2])
    np.testing.assert_allclose(outputs, default, rtol=0, atol=atol)
    assert (outputs.argmax(-1) == default.argmax(-1)).all()


def test_mixed_precision_model_exports_float32(held_out, tmp_path):
    """A model trained under mixed_bfloat16 exports: TFLite has no bfloat16 kernels."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, include_aux=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    path = tflite.export_tflite(model, tmp_path / "mixed.tflite")
    assert "LOCAL_RESPONSE_NORMALIZATION" not in tflite.ops(path)  # still the fast LRN form
    expected = ik.inference_model(model).predict(held_out[:2], verbose=0)
    np.testing.assert_allclose(tflite.TFLiteRunner(path)(held_out[:2]), expected, atol=1e-5)


def test_full_int8_needs_representative_data(paper_model, tmp_path):
    target = tmp_path / "int8.tflite"
    with pytest.raises(ValueError, match="representative_data"):
        tflite.export_tflite(paper_model, target, "int8")
    assert not target.exists()


def test_versioned_export_of_a_model_in_memory_with_calibration_images(
    paper_model, held_out, tmp_path
):
    """``export()`` of a model in memory: calibration images as an array, class names given."""
    from inception_keras.export import MANIFEST, export
    from inception_keras.export.verify import check_files
    from inception_keras.runners import shipped_class_names

    names = ("circle", "ring", "triangle", "square", "hexagon")
    calibration = rendered(16, seed=3)[0]
    version = export(
        paper_model,
        tmp_path,
        formats=("tflite",),
        tflite_quantizations=("int8",),
        representative_data=calibration,
        class_names=names,
    )
    assert version == str(tmp_path / "googlenet" / "1")
    written = set(os.listdir(version))
    # The SavedModel is always there: it is what the version folder is for TF Serving.
    assert {"saved_model.pb", "googlenet_int8.tflite", MANIFEST} <= written
    assert [name for name in written if name.endswith((".onnx", ".tflite"))] == [
        "googlenet_int8.tflite"
    ]
    assert check_files(version) == []  # the manifest lists each file, its size and its hash
    path = os.path.join(version, "googlenet_int8.tflite")
    assert shipped_class_names(path) == names and shipped_class_names(version) == names
    agreement, _ = top1_agreement(paper_model, tflite.TFLiteRunner(path), held_out)
    assert agreement >= 0.8  # as the int8 flavour above: calibrated from the array


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(quantization="int4"), "quantization"),
        (dict(quantization="float16", int8_io=True), "int8_io"),
        (dict(quantization="int8", representative_data=[], int8_io="int16"), "int8_io"),
    ],
)
def test_bad_arguments(paper_model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tflite.export_tflite(paper_model, tmp_path / "x.tflite", **kwargs)


def test_every_tflite_flavour_is_builtin_only(paper_tflite):
    for name, path in paper_tflite.items():
        names = tflite.ops(path)
        assert "CONV_2D" in names and "SOFTMAX" in names, (name, names)
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in names), (name, names)
        # Every op name is a builtin's upper-case name: a custom op would show its own code.
        assert all(op.isupper() for op in names), (name, names)
        print(f"\n{name}: {names}")
    # Every model carries LRN as ops XNNPACK runs, not as TFLite's slow LRN op.
    for path in paper_tflite.values():
        names = tflite.ops(path)
        assert "LOCAL_RESPONSE_NORMALIZATION" not in names and {"SQUARE", "SQRT", "DIV"} <= set(
            names
        )


@pytest.mark.parametrize("flavour", ["int8", "int8_io"])
def test_full_int8_keeps_only_lrn_power_in_float32(paper_tflite, flavour):
    """TFLite's int8 SQRT/DIV are slow scalar loops: the full-integer model keeps LRN's power and
    division in float32 (XNNPACK), and every convolution and fully connected layer in int8."""
    types = output_types(paper_tflite[flavour])
    assert types["SQRT"] == types["DIV"] == {"FLOAT32"}
    assert types["CONV_2D"] == types["FULLY_CONNECTED"] == types["MAX_POOL_2D"] == {"INT8"}
    # 2 LRN layers x 2 SQRT; nothing else in the network takes a square root.
    assert counts(paper_tflite[flavour])["SQRT"] == 4


def output_types(path):
    """{op name: set of its output tensors' types} of a .tflite file."""
    types = {}
    for name, output_type in operators(path):
        types.setdefault(name, set()).add(output_type)
    return types


def counts(path):
    return collections.Counter(name for name, _ in operators(path))


def operators(path):
    """(builtin op name, first output's tensor type) for each operator of a .tflite file."""
    from ai_edge_litert import schema_py_generated as schema

    def names(enum):
        return {value: name for name, value in vars(enum).items() if not name.startswith("_")}

    op_names, type_names = names(schema.BuiltinOperator), names(schema.TensorType)
    with open(path, "rb") as f:
        model = schema.Model.GetRootAs(f.read())
    subgraph = model.Subgraphs(0)
    for o in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        yield op_names[builtin], type_names[subgraph.Tensors(op.Outputs(0)).Type()]


def test_ops_reports_flex_ops(tmp_path):
    # The builtin-only check above is only as good as `ops`: show it does see a Flex op.
    inputs = keras.Input((3, 3))
    model = keras.Model(inputs, keras.layers.Lambda(tf.linalg.inv)(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    path = tmp_path / "flex.tflite"
    path.write_bytes(converter.convert())
    assert any(op.startswith("Flex") for op in tflite.ops(path))


def tiny_model():
    """A one-input softmax classifier that converts in a second (atomicity needs no GoogLeNet)."""
    inputs = keras.Input((32, 32, 3), name="images")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_tflite_write_is_atomic(tmp_path, monkeypatch):
    from_saved_model = tf.lite.TFLiteConverter.from_saved_model

    def failing_converter(*args, **kwargs):
        converter = from_saved_model(*args, **kwargs)

        def fail():
            raise RuntimeError("conversion failed")

        converter.convert = fail
        return converter

    model, target = tiny_model(), tmp_path / "model.tflite"
    tflite.export_tflite(model, target)  # the unpatched export works...
    target.unlink()
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", failing_converter)
    with pytest.raises(RuntimeError, match="conversion failed"):
        tflite.export_tflite(model, target)
    assert list(tmp_path.iterdir()) == []  # ...the failing one leaves neither target nor temp file

    target.write_bytes(b"previous export")
    with pytest.raises(RuntimeError):
        tflite.export_tflite(model, target)
    assert target.read_bytes() == b"previous export"


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant, opset", [("paper", 17), ("bn", 13)])
def test_onnx_export(variant, opset, paper_model, bn_model, held_out, tmp_path):
    import onnx

    model = paper_model if variant == "paper" else bn_model
    path = onnx_export.export_onnx(model, tmp_path / "model.onnx", opset=opset)
    print(f"\nONNX {variant} opset {opset}: {os.path.getsize(path) / 1e6:.2f} MB")

    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import}[""] == opset
    (graph_input,) = proto.graph.input
    (graph_output,) = proto.graph.output
    assert graph_input.name == "images" and graph_output.name == "probabilities"
    batch, *rest = graph_input.type.tensor_type.shape.dim
    assert batch.dim_param and not batch.HasField("dim_value")  # symbolic batch dimension
    assert [d.dim_value for d in rest] == [SIZE, SIZE, 3]
    op_types = {n.op_type for n in proto.graph.node}
    assert "LRN" not in op_types  # the paper variant's LRN as elementwise ops + a 1x1 Conv
    assert ({"Sqrt", "Div"} <= op_types) == (variant == "paper")

    runner = onnx_export.OnnxRunner(path, threads=1)
    for batch in (held_out[:1], held_out[:3]):
        np.testing.assert_allclose(
            runner(batch), keras_probabilities(model, batch), rtol=0, atol=1e-5
        )


def test_onnx_runner_session_options(tmp_path):
    import onnxruntime

    model, images = tiny_model(), rendered(2, seed=5, size=32)[0]
    path = onnx_export.export_onnx(model, tmp_path / "tiny.onnx")
    options = {
        "graph_optimization_level": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "session.intra_op.allow_spinning": "0",
    }
    runner = onnx_export.OnnxRunner(path, session_options=options)
    np.testing.assert_allclose(runner(images), model.predict(images, verbose=0), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="graph_optimisation_level"):
        onnx_export.OnnxRunner(path, session_options={"graph_optimisation_level": 1})


def test_onnx_rejects_old_opset(bn_model, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        onnx_export.export_onnx(bn_model, tmp_path / "m.onnx", opset=9)


def test_onnx_write_is_atomic(tmp_path, monkeypatch):
    import tf2onnx

    def fail(*args, **kwargs):
        raise RuntimeError("conversion failed")

    model, target = tiny_model(), tmp_path / "model.onnx"
    onnx_export.export_onnx(model, target)
    target.unlink()
    monkeypatch.setattr(tf2onnx.convert, "from_function", fail)
    with pytest.raises(RuntimeError, match="conversion failed"):
        onnx_export.export_onnx(model, target)
    assert list(tmp_path.iterdir()) == []
