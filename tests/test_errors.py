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
