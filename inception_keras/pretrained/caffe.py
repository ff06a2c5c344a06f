"""BVLC GoogLeNet's ``.caffemodel`` read with the protobuf runtime (no Caffe needed) and mapped
onto this package's layer names and tensor layouts.

Both encodings are read: the 2014 one the published file uses (``NetParameter.layers``, field 2,
``V1LayerParameter`` with blobs in field 6 and 4-D num/channels/height/width dims) and the current
one (``NetParameter.layer``, field 100, blobs in field 7 with a ``BlobShape``).
"""

import functools
import math

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from inception_keras.architecture import (
    AUX_CONV_FILTERS,
    AUX_HEADS,
    CAFFE_INPUT_SCALE,
    TABLE_1,
    Inception,
)
from inception_keras.errors import UsageError

# The model zoo's layer names for the stem and classifiers; the inception blocks' are
# "inception_3a/1x1" ... "inception_5b/pool_proj", ours the same with "_" for "/".
STEM = {"conv1/7x7_s2": "conv1", "conv2/3x3_reduce": "conv2_reduce", "conv2/3x3": "conv2"}
BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")
CLASSIFIER = {"loss3/classifier": "fc"}
AUX = {
    f"loss{i}/{part}": f"{head}_{ours}"
    for i, head in enumerate(AUX_HEADS, start=1)
    for part, ours in (("conv", "conv"), ("fc", "fc1"), ("classifier", "fc2"))
}
DENSE = {"fc"} | {f"{head}_{part}" for head in AUX_HEADS for part in ("fc1", "fc2")}


def layer_names():
    """``{Caffe layer name: our layer name}`` for every layer with weights."""
    names = dict(STEM)
    for row in TABLE_1:
        if isinstance(row, Inception):
            names.update({f"{row.name}/{b}": f"{row.name}_{b}" for b in BRANCHES})
    return {**names, **CLASSIFIER, **AUX}


@functools.cache
def _net_parameter():
    """A message class for ``caffe.NetParameter`` holding only the fields read here.

    Written as a descriptor rather than compiled from caffe.proto: that file is not shipped by any
    maintained package, and these few fields (whose numbers are fixed by Caffe's format) are all
    a weights file needs.
    """
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="inception_keras/caffe_weights.proto", package="inception_keras_caffe", syntax="proto2"
    )

    def message(name, *fields):
        m = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            f = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                f.type_name = f".inception_keras_caffe.{type_name}"
        return m

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("BlobShape", ("dim", 1, F.TYPE_INT64, rep, None))
    message(
        "BlobProto",
        ("num", 1, F.TYPE_INT32, opt, None),
        ("channels", 2, F.TYPE_INT32, opt, None),
        ("height", 3, F.TYPE_INT32, opt, None),
        ("width", 4, F.TYPE_INT32, opt, None),
        ("data", 5, F.TYPE_FLOAT, rep, None),
        ("shape", 7, F.TYPE_MESSAGE, opt, "BlobShape"),
        ("double_data", 8, F.TYPE_DOUBLE, rep, None),
    )
    message(
        "V1LayerParameter",
        ("name", 4, F.TYPE_STRING, opt, None),
        ("type", 5, F.TYPE_INT32, opt, None),
        ("blobs", 6, F.TYPE_MESSAGE, rep, "BlobProto"),
    )
    message(
        "LayerParameter",
        ("name", 1, F.TYPE_STRING, opt, None),
        ("type", 2, F.TYPE_STRING, opt, None),
        ("blobs", 7, F.TYPE_MESSAGE, rep, "BlobProto"),
    )
    message(
        "NetParameter",
        ("name", 1, F.TYPE_STRING, opt, None),
        ("layers", 2, F.TYPE_MESSAGE, rep, "V1LayerParameter"),
        ("layer", 100, F.TYPE_MESSAGE, rep, "LayerParameter"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("inception_keras_caffe.NetParameter")
    )


def read_caffemodel(path):
    """``{Caffe layer name: [blob arrays]}`` for every layer of the file that has blobs."""
    with open(path, "rb") as f:
        data = f.read()
    net = _net_parameter()()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError) as error:
        raise UsageError(f"corrupt or not a Caffe model file: {path} ({error})") from None
    blobs = {}
    for layer in list(net.layer) + list(net.layers):
        if len(layer.blobs):
            blobs[layer.name] = [_blob_array(blob, layer.name, path) for blob in layer.blobs]
    if not blobs:
        raise UsageError(f"corrupt or not a Caffe model file: {path} (no layer has weights)")
    return blobs


def _blob_array(blob, layer, path):
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:  # the 2014 encoding: always 4-D, unused leading dims 1
        shape = (blob.num, blob.channels, blob.height, blob.width)
    values = blob.data if len(blob.data) else blob.double_data
    array = np.asarray(values, dtype=np.float32)
    if array.size != math.prod(shape):
        raise UsageError(
            f"{path}: layer {layer!r} has a blob of shape {shape} holding {array.size} values."
        )
    return array.reshape(shape)


def keras_weights(blobs, path="the Caffe model"):
    """Our ``{layer name: [kernel, bias]}`` from :func:`read_caffemodel`'s blobs.

    Convolutions OIHW -> HWIO, with conv1's input channels reversed (Caffe feeds BGR images, the
    model takes RGB) and its kernel multiplied by ``CAFFE_INPUT_SCALE`` (the model divides its
    mean-subtracted input by it; Caffe does not). Fully-connected (out, in) -> (in, out); the aux
    heads' first FC also has its input rows reordered from Caffe's C,H,W flatten order to Keras'
    H,W,C. Layers the file lacks are absent from the result (a deploy-only file has no aux
    heads); the main network's must be there.
    """
    weights = {}
    for caffe_name, ours in layer_names().items():
        if caffe_name not in blobs:
            if ours in AUX.values():
                continue
            raise UsageError(f"{path} has no layer {caffe_name!r}: not a BVLC GoogLeNet model.")
        arrays = blobs[caffe_name]
        if len(arrays) != 2:
            raise UsageError(
                f"{path}: layer {caffe_name!r} has {len(arrays)} blobs, not a weight and a bias."
            )
        weight, bias = arrays
        bias = bias.reshape(-1)
        if ours in DENSE:
            weight = weight.reshape(weight.shape[-2:])  # the 2014 encoding stores (1, 1, out, in)
            kernel = weight.T
            if ours.endswith("_fc1"):
                kernel = _chw_rows_to_hwc(weight, caffe_name, path)
        else:
            if weight.ndim != 4:
                raise UsageError(
                    f"{path}: layer {caffe_name!r} has a {weight.ndim}-D weight "
                    f"{weight.shape}; a convolution's is 4-D."
                )
            kernel = weight.transpose(2, 3, 1, 0)
            if ours == "conv1":  # BGR -> RGB, and the model's input scaling undone
                kernel = kernel[:, :, ::-1, :] * CAFFE_INPUT_SCALE
        weights[ours] = [np.ascontiguousarray(kernel), bias]
    return weights


def _chw_rows_to_hwc(weight, caffe_name, path):
    out, inputs = weight.shape
    side = math.isqrt(inputs // AUX_CONV_FILTERS)
    if side * side * AUX_CONV_FILTERS != inputs:
        raise UsageError(
            f"{path}: layer {caffe_name!r} takes {inputs} inputs, not "
            f"{AUX_CONV_FILTERS} x a square feature map."
        )
    chw = weight.reshape(out, AUX_CONV_FILTERS, side, side)
    return chw.transpose(2, 3, 1, 0).reshape(side * side * AUX_CONV_FILTERS, out)


def convert(path):
    """Our layer weights from a BVLC GoogLeNet ``.caffemodel`` (either encoding)."""
    return keras_weights(read_caffemodel(path), path)
