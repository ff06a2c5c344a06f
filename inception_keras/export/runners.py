"""The runners' former home: :mod:`inception_keras.runners` holds them now; these names stay
importable from here."""

from inception_keras.runners import (  # noqa: F401 (re-exported)
    FORMAT_NAMES,
    KerasRunner,
    OnnxRunner,
    SavedModelRunner,
    TFLiteRunner,
    artefact_format,
    asset_class_names,
    checkpoint_class_names,
    class_names,
    load_runner,
)
