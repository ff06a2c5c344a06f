"""The exception for a user's mistake: a bad argument, a missing or unreadable file, data that
does not fit. The command line prints it as one line (exit status 2); any other exception is a
bug and keeps its traceback.
"""


class UsageError(ValueError):
    """Bad input from the user; the message names the argument, file or value."""

    # TensorFlow's autograph re-raises an error from traced code (a tf.data map, a tf.function)
    # as its own type only when that type's constructor is Exception's; otherwise it becomes a
    # StagingError and the CLI would show a traceback for a user's mistake.
    __init__ = Exception.__init__
