"""One training run for tests/test_train_cli.py that can kill itself inside a file write.

``python tests/_killed_run.py DATA_DIR OUT_DIR [KILL]`` trains the smoke-size run of
``test_train_cli.train_command`` through ``inception-keras train``. ``KILL`` is
``WRITER:N``: the N-th call (1-based) of ``keras.Model.save_weights`` (the resume backup) or
``keras.Model.save`` (the checkpoints) writes half of its file and then the process SIGKILLs
itself - a ``kill -9`` at the worst moment, made deterministic.
"""

import os
import signal
import sys

import keras


def kill_inside(writer, call):
    original = getattr(keras.Model, writer)
    calls = []

    def dying(self, filepath, *args, **kwargs):
        calls.append(filepath)
        original(self, filepath, *args, **kwargs)
        if len(calls) == call:
            with open(filepath, "r+b") as f:  # the write got half-way
                f.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    setattr(keras.Model, writer, dying)


def main():
    data_dir, out_dir = sys.argv[1:3]
    if len(sys.argv) > 3:
        writer, call = sys.argv[3].split(":")
        kill_inside(writer, int(call))
    sys.path.insert(0, os.path.dirname(__file__))
    from test_train_cli import train_command

    from inception_keras.cli import main as cli

    return cli(train_command(data_dir, out_dir)[3:])  # without "python -m inception_keras.cli"


if __name__ == "__main__":
    sys.exit(main())
