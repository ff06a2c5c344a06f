"""BVLC GoogLeNet .caffemodel files (both encodings) converted to the "paper" variant, checked
against OpenCV's Caffe importer running the same file (tests/caffe_reference.py writes random
weights in Caffe's layout with its own protobuf encoder)."""

import caffe_reference as caffe
import numpy as np
import pytest

import inception_keras as ik
from inception_keras import pretrained

SIZE = 224
BLOCKS = ("inception_3a", "inception_4d", "inception_5b")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("caffe")
    weights = caffe.random_weights(seed=5)
    prototxt = root / "deploy.prototxt"
    prototxt.write_text(caffe.deploy_prototxt())
    paths = {}
    for encoding in ("v1", "v2"):
        paths[encoding] = str(root / f"googlenet_{encoding}.caffemodel")
        caffe.write_caffemodel(paths[encoding], weights, encoding)
    return str(prototxt), paths, weights


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    smooth = rng.uniform(0, 255, (2, 8, 8, 3)).repeat(SIZE // 8, 1).repeat(SIZE // 8, 2)
    return np.concatenate([smooth, rng.uniform(0, 255, (1, SIZE, SIZE, 3))]).astype("float32")


@pytest.fixture(scope="module")
def reference(files, images):
    prototxt, paths, _ = files
    names = ["prob", "loss1/prob", "loss2/prob"] + [f"{b}/output" for b in BLOCKS]
    return caffe.run_opencv(prototxt, paths["v1"], caffe.caffe_input(images), names)


def relative_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["v1", "v2"])
def test_converted_model_equals_caffe(files, images, reference, encoding):
    _, paths, _ = files
    model = ik.GoogLeNet(weights=paths[encoding], include_aux=True)
    outputs = ik.feature_model(model, list(BLOCKS) + ["predictions", "aux1", "aux2"])(images)
    for block in BLOCKS:
        ours = np.asarray(outputs[block]).transpose(0, 3, 1, 2)  # NHWC -> Caffe's NCHW
        assert relative_error(ours, reference[f"{block}/output"]) < 1e-4, block
    for ours, theirs in (("predictions", "prob"), ("aux1", "loss1/prob"), ("aux2", "loss2/prob")):
        got = np.asarray(outputs[ours])
        np.testing.assert_allclose(got, reference[theirs].reshape(got.shape), atol=1e-4)
        # Images are told apart by far more than the tolerance, so the check could fail.
        assert np.abs(got[0] - got[1]).max() > 0.01, ours


@pytest.mark.slow
def test_caffe_semantics(files, images, reference):
    """What makes the weights fit: explicit padding 3 in conv1, round-up pools, BGR and mean."""
    _, paths, weights = files
    model = ik.GoogLeNet(weights=paths["v1"])
    assert model.get_layer("conv1_pad").padding == ((3, 3), (3, 3))
    assert model.get_layer("conv1").padding == "valid"
    # Caffe's OIHW kernel with B,G,R input channels is our HWIO kernel with R,G,B, times the
    # 127.5 our input scaling divides by (Caffe feeds the mean-subtracted pixels unscaled).
    np.testing.assert_allclose(
        model.get_layer("conv1").kernel.numpy(),
        weights["conv1/7x7_s2"][0].transpose(2, 3, 1, 0)[:, :, ::-1] * 127.5,
        rtol=1e-7,
    )
    x = np.full((1, 224, 224, 3), 200.0, "float32")
    scaled = ik.feature_model(model, ["rescale"])(x)["rescale"].numpy()
    np.testing.assert_allclose(
        scaled[0, 0, 0], (200.0 - np.array([123, 117, 104])) / 127.5, rtol=1e-6
    )
    # A model with TF's "same" conv1 (2 before, 3 after) and the same weights is measurably off.
    same = ik.GoogLeNet(
        variant=ik.model.Variant(**{**ik.model.VARIANTS["paper"].__dict__, "caffe_padding": False})
    )
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    pretrained.assign(same, weights)
    shifted = same.predict(images, verbose=0)
    assert np.abs(shifted - reference["prob"].reshape(shifted.shape)).max() > 1e-3


@pytest.mark.parametrize("size", [224, 237])
def test_max_pools_round_up_like_caffe(size):
    """Caffe's output size ceil((n - 3) / 2) + 1 at every pool, even and odd sizes."""
    model = ik.GoogLeNet(include_top=False, input_shape=(size, size, 3))
    n = (size + 6 - 7) // 2 + 1  # conv1: pad 3, kernel 7, stride 2
    for pool in ("pool1", "pool2", "pool3", "pool4"):
        n = -(-(n - 3) // 2) + 1
        assert model.get_layer(pool).output.shape[1] == n, pool


def test_convolutions_load_at_other_sizes_and_aux_heads_need_224(files):
    _, paths, _ = files
    backbone = ik.GoogLeNet(
        weights=paths["v2"], include_top=False, pooling="avg", input_shape=(160, 160, 3)
    )
    assert backbone.output.shape[-1] == 1024
    with pytest.raises(ValueError, match="aux1_fc1.*224x224"):
        ik.GoogLeNet(weights=paths["v2"], include_aux=True, input_shape=(160, 160, 3))


@pytest.mark.slow
def test_files_that_are_not_googlenet(tmp_path, files):
    _, _, weights = files
    missing = {k: v for k, v in weights.items() if k != "inception_4c/5x5"}
    path = tmp_path / "missing.caffemodel"
    caffe.write_caffemodel(str(path), missing, "v2")
    with pytest.raises(ValueError, match="inception_4c/5x5"):
        ik.GoogLeNet(weights=str(path))
    misshaped = dict(weights)
    misshaped["inception_3b/3x3"] = [
        np.zeros((192, 128, 5, 5), "float32"),
        weights["inception_3b/3x3"][1],
    ]
    path = tmp_path / "misshaped.caffemodel"
    caffe.write_caffemodel(str(path), misshaped, "v2")
    with pytest.raises(ValueError, match="inception_3b_3x3"):
        ik.GoogLeNet(weights=str(path))
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff\xfe not protobuf" * 100)
    with pytest.raises(ValueError, match="corrupt or not a Caffe model file: .*junk.caffemodel"):
        ik.GoogLeNet(weights=str(junk))
    with pytest.raises(ValueError, match="'paper' variant"):
        ik.GoogLeNet(weights=str(junk), variant="slim")


def test_odd_input_size_matches_caffe(tmp_path):
    """At 237 pixels pool2 and pool3 see odd sizes: TF's "same" and Caffe's round-up differ."""
    size = 237
    weights = caffe.random_weights(seed=2, aux=False, input_size=size)
    prototxt, model_file = tmp_path / "deploy.prototxt", str(tmp_path / "odd.caffemodel")
    prototxt.write_text(caffe.deploy_prototxt(input_size=size, aux=False))
    caffe.write_caffemodel(model_file, weights, "v2")
    x = np.random.default_rng(3).uniform(0, 255, (1, size, size, 3)).astype("float32")
    want = caffe.run_opencv(
        str(prototxt), model_file, caffe.caffe_input(x), ["inception_5b/output"]
    )["inception_5b/output"]
    model = ik.GoogLeNet(weights=model_file, include_top=False, input_shape=(size, size, 3))
    got = model.predict(x, verbose=0).transpose(0, 3, 1, 2)
    assert got.shape == want.shape
    assert relative_error(got, want) < 1e-4
