"""Keyword arguments that were renamed: the old name keeps working, with a warning."""

import functools
import warnings


def renamed_arguments(**new_names):
    """Decorator: ``@renamed_arguments(old_name="new_name")`` accepts ``old_name=`` as
    ``new_name=`` and warns (``DeprecationWarning``) that the old name will go away."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in new_names.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{function.__name__}() got both `{old}` and `{new}`; `{old}` is "
                            f"the former name of `{new}`: pass only `{new}`."
                        )
                    warnings.warn(
                        f"`{old}` is deprecated: use `{new}`.", DeprecationWarning, stacklevel=2
                    )
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate
