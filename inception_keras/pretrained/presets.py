"""The published ImageNet weights for Inception v1: where they live and what their publishers say.

Pure data; :mod:`inception_keras.pretrained` downloads, checks and converts them.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Preset:
    """One published set of weights.

    Attributes:
        name: what ``weights=``/``--weights``/``convert`` accept.
        variant: the :data:`inception_keras.architecture.VARIANTS` entry the weights fit.
        origin: the publisher's download URL.
        file_name: the downloaded file's name in the cache.
        sha1: the publisher's SHA-1 of the file, or ``None`` when none is published.
        checkpoint: inside an archive, the checkpoint's prefix.
        licence: the licence the publisher states.
        top1, top5: ImageNet validation accuracy (single centre crop) as published.
        aux_heads: whether the auxiliary classifiers' weights are published too.
    """

    name: str
    variant: str
    origin: str
    file_name: str
    sha1: str | None
    licence: str
    top1: float
    top5: float
    aux_heads: bool
    checkpoint: str | None = None


WEIGHTS_PRESETS = {
    p.name: p
    for p in (
        Preset(
            name="bvlc",
            variant="paper",
            origin="http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
            file_name="bvlc_googlenet.caffemodel",
            sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
            licence="BVLC model zoo: released for unrestricted use",
            top1=0.687,
            top5=0.889,
            aux_heads=True,
        ),
        Preset(
            name="slim",
            variant="slim",
            origin="http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz",
            file_name="inception_v1_2016_08_28.tar.gz",
            sha1=None,
            checkpoint="inception_v1.ckpt",
            licence="Apache License 2.0 (TensorFlow models)",
            top1=0.698,
            top5=0.896,
            aux_heads=False,
        ),
    )
}

# weights="imagenet" means the variant's published weights.
IMAGENET = {"paper": "bvlc", "slim": "slim"}

PRESETS = WEIGHTS_PRESETS  # its former name, the same dict
