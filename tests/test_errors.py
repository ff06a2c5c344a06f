"""User mistakes end in one line and exit status 2; anything else is a bug with a traceback."""

import pytest
import tensorflow as tf

from inception_keras import cli
from inception_keras.errors import UsageError


def test_a_user_error_raised_in_traced_code_keeps_its_type():
    @tf.function
    def traced(x):
        if x.shape[-1] != 3:
            raise UsageError(f"`image` must have 3 channels; got {x.shape[-1]}.")
        return x

    with pytest.raises(UsageError, match="3 channels; got 4"):
        traced(tf.zeros([2, 4]))


def test_cli_prints_a_user_error_as_one_line(tmp_path, capsys):
    status = cli.main(["predict", str(tmp_path / "a.png"), "--model", str(tmp_path / "no.keras")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines() == [
        f"inception-keras predict: error: model {str(tmp_path / 'no.keras')!r} does not exist."
    ]


def test_cli_keeps_the_traceback_of_a_bug(monkeypatch):
    def broken(args):
        raise ValueError("an internal error, not the user's")

    monkeypatch.setattr(cli, "_summary", broken)
    with pytest.raises(ValueError, match="internal error"):
        cli.main(["summary"])


def test_renamed_arguments_still_work_with_a_warning():

    from inception_keras.evaluation import multi_crop
    from inception_keras.model import GoogLeNet

    with pytest.warns(DeprecationWarning, match="`aux_logits` is deprecated: use `include_aux`"):
        model = GoogLeNet(input_shape=(64, 64, 3), classes=3, aux_logits=True)
    assert model.output_names == ["predictions", "aux1", "aux2"]
    image = tf.zeros([80, 80, 3])
    with pytest.warns(DeprecationWarning) as caught:
        old = multi_crop(image, crops=1, input_size=32, central_fraction=0.5)
    assert old.shape == (1, 32, 32, 3)
    assert sorted(str(w.message) for w in caught) == [
        "`central_fraction` is deprecated: use `crop_fraction`.",
        "`input_size` is deprecated: use `image_size`.",
    ]
    from inception_keras.naive import compare_naive

    with pytest.raises(TypeError, match="both `input_size` and `image_size`"):
        compare_naive(input_size=32, image_size=32)
    from inception_keras.preprocessing import image_problem

    with pytest.warns(
        DeprecationWarning, match="`max_pixels` is deprecated: use `max_image_pixels`"
    ):
        problem = image_problem(tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)), max_pixels=63)
    assert "over the limit of 63 pixels" in problem.numpy().decode()
    with pytest.raises(TypeError, match="both `central_fraction` and `crop_fraction`"):
        multi_crop(image, central_fraction=0.5, crop_fraction=0.5)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("m.keras", "Keras"),
        ("m.tflite", "TFLite"),
        ("m.onnx", "ONNX"),
        ("sm/saved_model.pb", "SavedModel"),
    ],
)
def test_a_corrupt_model_file_is_named_in_one_line(tmp_path, capsys, name, kind):
    from inception_keras import shapes

    image = shapes.write_images(tmp_path / "images", count=1, image_size=32)[0]
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(bytes(range(256)) * 8)  # not a model of any kind
    model = str(path.parent if kind == "SavedModel" else path)
    for command in (["predict", image, "--model", model], ["evaluate", "--model", model]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert f"error: corrupt or not a {kind} file: {model}" in err
        assert len(err.strip().splitlines()) == 1, err


def test_paths_of_the_wrong_kind_are_named_in_one_line(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    folder = tmp_path / "data" / "class_a"
    folder.mkdir(parents=True)
    from inception_keras import shapes

    shapes.write_images(folder, count=2, image_size=32)
    (tmp_path / "data" / "class_b").mkdir()
    shapes.write_images(tmp_path / "data" / "class_b", count=2, image_size=32)
    train = ["train", "--dataset", str(tmp_path / "data"), "--image-size", "32", "--epochs", "1"]
    assert cli.main(train + ["--output-dir", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert f"`output_dir` '{a_file}' is a file" in err and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "not a directory"


@pytest.mark.slow
def test_more_wrong_paths_and_values_are_one_line(tmp_path, capsys):
    from inception_keras import shapes
    from inception_keras.model import GoogLeNet

    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    checkpoint = tmp_path / "m.keras"
    GoogLeNet(input_shape=(32, 32, 3), classes=2, variant="bn").save(checkpoint)
    image = shapes.write_images(tmp_path / "images", count=1, image_size=32)[0]
    commands = {
        # (command, exit status, what the line names)
        "export into a file": (
            ["export", "--model", str(checkpoint), "--output-dir", str(a_file)]
            + ["--formats", "saved_model"],
            2,
            f"cannot export into '{a_file}': it is a file",
        ),
        "zero batch": (
            ["predict", image, "--model", str(checkpoint), "--batch-size", "0"],
            2,
            "`batch_size` must be at least 1, got 0",
        ),
        "a file as tfds data_dir": (
            ["train", "--dataset", "shapes/smoke", "--data-dir", str(a_file)],
            1,
            f"{a_file}",
        ),
    }
    for what, (command, status, named) in commands.items():
        assert cli.main(command) == status, what
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, (what, err)
    assert a_file.read_text() == "mine"
    # The flags' former names still work, each with a note naming the new one.
    former = ["export", "--checkpoint", str(checkpoint), "--output", str(a_file)]
    assert cli.main(former + ["--formats", "saved_model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    notes = err[:2]
    assert len(err) == 3 and f"cannot export into '{a_file}': it is a file" in err[2]
    assert notes == [
        "inception-keras: --checkpoint is deprecated: use --model.",
        "inception-keras: --output is deprecated: use --output-dir.",
    ]
