"""An independent Caffe-side oracle for the ``.caffemodel`` -> Keras GoogLeNet converter.

Nothing here uses protobuf or the package under test: the deploy prototxt is generated as text,
the ``.caffemodel`` bytes are produced by a small hand-written protobuf wire encoder, and the
reference outputs come from OpenCV's own Caffe importer and DNN engine (``cv2.dnn``). A test can
therefore write random BVLC-GoogLeNet-shaped weights in either Caffe encoding, convert them with
the package, and compare its Keras outputs against OpenCV's.

Public helpers:

* ``deploy_prototxt(num_classes=1000, input_size=224, aux=True) -> str``
* ``random_weights(num_classes=1000, seed=0, aux=True, input_size=224) -> dict``
  (pass the prototxt's ``input_size`` when it is not 224 and ``aux`` is on: the aux fc fan-in
  depends on it)
* ``write_caffemodel(path, weights, encoding)`` with ``encoding`` ``"v1"`` or ``"v2"``
* ``caffe_input(images_rgb_0_255_nhwc) -> NCHW float32 BGR minus mean``
* ``run_opencv(prototxt_path, caffemodel_path, images_bgr_minus_mean_nchw, outputs) -> dict``

Layer names follow models/bvlc_googlenet in the BVLC Caffe repository.
"""

import math

import numpy as np

# Caffe's ImageNet mean, in B, G, R order (the order of the network's input channels).
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)

# Table 1 of Szegedy et al. 2015: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_BLOCKS = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
# A stride-2 max pool follows these blocks (pool3 after 3b, pool4 after 4e).
_POOL_AFTER = {"3b": "pool3/3x3_s2", "4e": "pool4/3x3_s2"}
# Auxiliary classifiers hang off these block outputs.
_AUX_ON = {"4a": "loss1", "4d": "loss2"}


# ---------------------------------------------------------------------------------------------
# Spatial sizes (Caffe arithmetic: convolution floors, pooling ceils).


def _conv_out(size, kernel, stride=1, pad=0):
    return (size + 2 * pad - kernel) // stride + 1


def _pool_out(size, kernel, stride=1, pad=0):
    out = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    # Caffe drops a last window that would start inside the padding.
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _sizes(input_size):
    """(size of the 4x blocks' maps, size of the aux heads' ave_pool maps) for an input size."""
    s = _conv_out(input_size, 7, 2, 3)  # conv1/7x7_s2
    s = _pool_out(s, 3, 2)  # pool1/3x3_s2
    s = _conv_out(s, 3, 1, 1)  # conv2/3x3
    s = _pool_out(s, 3, 2)  # pool2/3x3_s2
    s = _pool_out(s, 3, 2)  # pool3/3x3_s2 (inception 3x keeps the size)
    return s, _pool_out(s, 5, 3)  # 4x blocks, loss{1,2}/ave_pool


# ---------------------------------------------------------------------------------------------
# Prototxt.


def _layer(name, kind, bottoms, top=None, param_block="", params=()):
    """One ``layer {}`` entry; ``params`` are (key, value) lines inside ``param_block {}``."""
    bottoms = [bottoms] if isinstance(bottoms, str) else list(bottoms)
    text = f'layer {{\n  name: "{name}"\n  type: "{kind}"\n'
    text += "".join(f'  bottom: "{b}"\n' for b in bottoms)
    text += f'  top: "{top or name}"\n'
    if param_block:
        text += f"  {param_block} {{\n"
        text += "".join(f"    {key}: {value}\n" for key, value in params)
        text += "  }\n"
    return text + "}\n"


def _relu(name, blob):
    # In place, as in the published net: the blob keeps the convolution's name.
    return _layer(name, "ReLU", blob, top=blob)


def _conv(name, bottom, num_output, kernel, stride=1, pad=0, relu=None):
    """A Convolution layer plus its in-place ReLU (named as in bvlc_googlenet)."""
    params = [("num_output", num_output)]
    params += [("pad", pad)] if pad else []
    params += [("kernel_size", kernel)]
    params += [("stride", stride)] if stride != 1 else []
    if relu is None:
        # inception_3a/1x1 -> inception_3a/relu_1x1, conv2/3x3 -> conv2/relu_3x3, ...
        head, _, tail = name.rpartition("/")
        relu = f"{head}/relu_{tail}"
    return _layer(name, "Convolution", bottom, None, "convolution_param", params) + _relu(
        relu, name
    )


def _pool(name, bottom, method, kernel=None, stride=1, pad=0, global_pooling=False):
    if global_pooling:
        params = [("pool", method), ("global_pooling", "true")]
    else:
        params = [("pool", method), ("kernel_size", kernel), ("stride", stride)]
        params += [("pad", pad)] if pad else []
    return _layer(name, "Pooling", bottom, None, "pooling_param", params)


def _lrn(name, bottom):
    params = [("local_size", 5), ("alpha", 0.0001), ("beta", 0.75)]
    return _layer(name, "LRN", bottom, None, "lrn_param", params)


def _fc(name, bottom, num_output):
    return _layer(
        name, "InnerProduct", bottom, None, "inner_product_param", [("num_output", num_output)]
    )


def _dropout(name, blob, ratio):
    # Identity at inference; kept so the net reads like the published one.
    return _layer(name, "Dropout", blob, blob, "dropout_param", [("dropout_ratio", ratio)])


def _inception(block, bottom, filters):
    n1, n3r, n3, n5r, n5, npp = filters
    p = f"inception_{block}"
    text = _conv(f"{p}/1x1", bottom, n1, 1)
    text += _conv(f"{p}/3x3_reduce", bottom, n3r, 1)
    text += _conv(f"{p}/3x3", f"{p}/3x3_reduce", n3, 3, pad=1)
    text += _conv(f"{p}/5x5_reduce", bottom, n5r, 1)
    text += _conv(f"{p}/5x5", f"{p}/5x5_reduce", n5, 5, pad=2)
    text += _pool(f"{p}/pool", bottom, "MAX", 3, 1, 1)
    text += _conv(f"{p}/pool_proj", f"{p}/pool", npp, 1)
    branches = [f"{p}/{branch}" for branch in ("1x1", "3x3", "5x5", "pool_proj")]
    text += _layer(f"{p}/output", "Concat", branches)  # concatenated on channels (axis 1)
    return text


def _aux_head(prefix, bottom, num_classes):
    text = _pool(f"{prefix}/ave_pool", bottom, "AVE", 5, 3)
    text += _conv(f"{prefix}/conv", f"{prefix}/ave_pool", 128, 1, relu=f"{prefix}/relu_conv")
    text += _fc(f"{prefix}/fc", f"{prefix}/conv", 1024)
    text += _relu(f"{prefix}/relu_fc", f"{prefix}/fc")
    text += _dropout(f"{prefix}/drop_fc", f"{prefix}/fc", 0.7)
    text += _fc(f"{prefix}/classifier", f"{prefix}/fc", num_classes)
    text += _layer(f"{prefix}/prob", "Softmax", f"{prefix}/classifier")
    return text


def deploy_prototxt(num_classes=1000, input_size=224, aux=True):
    """Text of a BVLC GoogLeNet deploy prototxt (current ``layer {}`` syntax), input 1x3xSxS.

    At 224 the final pool is the published AVE 7x7 stride 1; at other sizes it is a global
    average pool so the classifier still sees 1024 features. With ``aux`` the two auxiliary
    heads (loss1 on inception_4a, loss2 on inception_4d) end in ``loss1/prob``/``loss2/prob``.
    """
    dims = "".join(f"      dim: {d}\n" for d in (1, 3, input_size, input_size))
    text = 'name: "GoogleNet"\n'
    text += 'layer {\n  name: "data"\n  type: "Input"\n  top: "data"\n  input_param {\n'
    text += f"    shape {{\n{dims}    }}\n  }}\n}}\n"
    text += _conv("conv1/7x7_s2", "data", 64, 7, 2, 3, relu="conv1/relu_7x7")
    text += _pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2)
    text += _lrn("pool1/norm1", "pool1/3x3_s2")
    text += _conv("conv2/3x3_reduce", "pool1/norm1", 64, 1)
    text += _conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1)
    text += _lrn("conv2/norm2", "conv2/3x3")
    text += _pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2)
    bottom = "pool2/3x3_s2"
    for block, filters in INCEPTION_BLOCKS:
        text += _inception(block, bottom, filters)
        bottom = f"inception_{block}/output"
        if block in _AUX_ON and aux:
            text += _aux_head(_AUX_ON[block], bottom, num_classes)
        if block in _POOL_AFTER:
            text += _pool(_POOL_AFTER[block], bottom, "MAX", 3, 2)
            bottom = _POOL_AFTER[block]
    if input_size == 224:
        text += _pool("pool5/7x7_s1", bottom, "AVE", 7, 1)
    else:
        text += _pool("pool5/7x7_s1", bottom, "AVE", global_pooling=True)
    text += _dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4)
    text += _fc("loss3/classifier", "pool5/7x7_s1", num_classes)
    text += _layer("prob", "Softmax", "loss3/classifier")
    return text


# ---------------------------------------------------------------------------------------------
# Random weights.


def _param_layers(num_classes, aux, input_size):
    """(name, kind, bottom, weight shape) of every parameterised layer, in network order."""
    layers = [
        ("conv1/7x7_s2", "conv", "data", (64, 3, 7, 7)),
        ("conv2/3x3_reduce", "conv", "pool1/norm1", (64, 64, 1, 1)),
        ("conv2/3x3", "conv", "conv2/3x3_reduce", (192, 64, 3, 3)),
    ]
    channels, bottom = 192, "pool2/3x3_s2"
    _, aux_size = _sizes(input_size)
    for block, (n1, n3r, n3, n5r, n5, npp) in INCEPTION_BLOCKS:
        p = f"inception_{block}"
        layers += [
            (f"{p}/1x1", "conv", bottom, (n1, channels, 1, 1)),
            (f"{p}/3x3_reduce", "conv", bottom, (n3r, channels, 1, 1)),
            (f"{p}/3x3", "conv", f"{p}/3x3_reduce", (n3, n3r, 3, 3)),
            (f"{p}/5x5_reduce", "conv", bottom, (n5r, channels, 1, 1)),
            (f"{p}/5x5", "conv", f"{p}/5x5_reduce", (n5, n5r, 5, 5)),
            (f"{p}/pool_proj", "conv", f"{p}/pool", (npp, channels, 1, 1)),
        ]
        channels, bottom = n1 + n3 + n5 + npp, f"{p}/output"
        if block in _AUX_ON and aux:
            a = _AUX_ON[block]
            layers += [
                (f"{a}/conv", "conv", f"{a}/ave_pool", (128, channels, 1, 1)),
                # Caffe flattens the 128 x h x w map in C, H, W order.
                (f"{a}/fc", "fc", f"{a}/conv", (1024, 128 * aux_size * aux_size)),
                (f"{a}/classifier", "fc", f"{a}/fc", (num_classes, 1024)),
            ]
        bottom = _POOL_AFTER.get(block, bottom)
    layers.append(("loss3/classifier", "fc", "pool5/7x7_s1", (num_classes, channels)))
    return layers


# Chosen by measuring with OpenCV on uniform-noise and smooth (upsampled 8x8 noise) 224 images.
# Classifier input RMS: pool5 about 25 (noise) to 46 (smooth), relu_fc of the aux heads about 16
# to 28; the gain turns that into logits spread by ~2-3.5 units, so at 1000 classes the max
# softmax probability is clearly above uniform without saturating. With fewer classes the
# largest logit stands out less (max of n normals ~ sqrt(2 ln n) sigma), so the gain shrinks by
# sqrt(ln n / ln 1000) to keep e.g. 10-class softmaxes from saturating too.
_CLASSIFIER_GAIN = 2.5
_FEATURE_RMS = {"loss1/classifier": 21.0, "loss2/classifier": 21.0, "loss3/classifier": 34.0}
# Var of ReLU(y) about its mean is (1/2 - 1/(2 pi)) Var(y) ~ 0.34 Var(y): with zero-sum filters
# (below) only that part propagates, so 1/0.34 ~ 2.94 replaces He's 2 to keep the RMS steady.
_ZERO_SUM_GAIN = 2.94


def random_weights(num_classes=1000, seed=0, aux=True, input_size=224):
    """Caffe-shaped float32 ``[weights, bias]`` per parameterised layer, keyed by layer name.

    Convolutions are (out, in, kh, kw), InnerProducts (out, in), biases (out,); dict order is
    network order. Scaled for ``caffe_input`` pixels (BGR minus mean): activations keep an RMS
    of tens through the whole net, no channel is dead, and the softmaxes are clearly non-uniform
    but not saturated. ``input_size`` only matters for the aux fc fan-in (128*4*4 = 2048 at 224).
    """
    rng = np.random.default_rng(seed)
    gain = _CLASSIFIER_GAIN * math.sqrt(min(1.0, math.log(max(num_classes, 2)) / math.log(1000)))
    weights = {}
    for name, _kind, _, shape in _param_layers(num_classes, aux, input_size):
        fan_in = int(np.prod(shape[1:]))
        w = rng.standard_normal(shape)
        if name.endswith("classifier"):
            w *= gain / math.sqrt(fan_in) / _FEATURE_RMS[name]
            bias = rng.uniform(0.0, 0.2, shape[0])
        elif name == "conv1/7x7_s2":
            # Its input is already zero-mean-ish: plain He-normal.
            w *= math.sqrt(2.0 / fan_in)
            bias = rng.uniform(0.2, 2.0, shape[0])
        else:
            # Inputs here are ReLU outputs (all >= 0). Plain zero-mean filters then give each
            # channel a random image-independent offset that grows with depth: deep features
            # become the same for every image and ~15% of channels die. Making every filter sum
            # to zero cancels that offset, so features stay image-dependent and alive.
            w -= w.reshape(shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (w.ndim - 1))
            w *= math.sqrt(_ZERO_SUM_GAIN / fan_in)
            # Positive and a visible fraction of the outputs, so dropped or misordered biases
            # show up in a comparison.
            bias = rng.uniform(0.2, 2.0, shape[0])
        weights[name] = [w.astype(np.float32), bias.astype(np.float32)]
    return weights


# ---------------------------------------------------------------------------------------------
# Hand-written protobuf wire encoding of a .caffemodel (no .proto, no message classes).

_VARINT, _LEN = 0, 2  # protobuf wire types


def _varint(value):
    if value < 0:  # negative int32/int64 are sent as 10-byte two's complement
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire_type):
    return _varint((field << 3) | wire_type)


def _int_field(field, value):
    return _key(field, _VARINT) + _varint(int(value))


def _len_field(field, payload):
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _str_field(field, text):
    return _len_field(field, text.encode("utf-8"))


def _packed_floats(field, array):
    return _len_field(field, np.ascontiguousarray(array, dtype="<f4").tobytes())


def _packed_varints(field, values):
    return _len_field(field, b"".join(_varint(int(v)) for v in values))


def _blob_v1(array, legacy_shape):
    """BlobProto with the legacy num/channels/height/width (fields 1-4) and packed data (5)."""
    num, channels, height, width = legacy_shape
    return (
        _int_field(1, num)
        + _int_field(2, channels)
        + _int_field(3, height)
        + _int_field(4, width)
        + _packed_floats(5, array.ravel())
    )


def _blob_v2(array):
    """BlobProto with packed data (5) and shape (7) = BlobShape {repeated int64 dim = 1}."""
    return _packed_floats(5, array.ravel()) + _len_field(7, _packed_varints(1, array.shape))


# V1LayerParameter.LayerType enum values.
_V1_TYPES = {"conv": 4, "fc": 14}
_V2_TYPES = {"conv": "Convolution", "fc": "InnerProduct"}


def _legacy_shape(array, is_weight, kind):
    if kind == "conv" and is_weight:
        return array.shape  # (out, in, kh, kw)
    if is_weight:
        return (1, 1) + array.shape  # InnerProduct: (1, 1, out, in)
    return (1, 1, 1, array.shape[0])  # biases


def write_caffemodel(path, weights, encoding):
    """Write ``weights`` (``random_weights``' layout) as a binary ``.caffemodel``.

    ``encoding="v1"``: NetParameter.layers (2) of V1LayerParameter {bottom 2, top 3, name 4,
    type 5 (enum), blobs 6} with legacy 4-D blob dims, as in the published 2014
    bvlc_googlenet.caffemodel. ``encoding="v2"``: NetParameter.layer (100) of LayerParameter
    {name 1, type 2 (string), bottom 3, top 4, blobs 7} with BlobShape dims. Only parameterised
    layers are written; bottom/top are included so the file reads like a real one.
    """
    if encoding not in ("v1", "v2"):
        raise ValueError(f"encoding must be 'v1' or 'v2', got {encoding!r}")
    # Each layer's bottom from the fixed topology (only for the bottom/top fields).
    bottoms = {name: bottom for name, _, bottom, _ in _param_layers(2, True, 224)}
    net = _str_field(1, "GoogleNet")
    for name, arrays in weights.items():
        kind = "conv" if np.ndim(arrays[0]) == 4 else "fc"
        bottom = bottoms.get(name, "")
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        if encoding == "v1":
            layer = _str_field(2, bottom) + _str_field(3, name) + _str_field(4, name)
            layer += _int_field(5, _V1_TYPES[kind])
            for i, a in enumerate(arrays):
                layer += _len_field(6, _blob_v1(a, _legacy_shape(a, i == 0, kind)))
            net += _len_field(2, layer)
        else:
            layer = _str_field(1, name) + _str_field(2, _V2_TYPES[kind])
            layer += _str_field(3, bottom) + _str_field(4, name)
            for a in arrays:
                layer += _len_field(7, _blob_v2(a))
            net += _len_field(100, layer)
    with open(path, "wb") as f:
        f.write(net)


# ---------------------------------------------------------------------------------------------
# OpenCV side.


def caffe_input(images_rgb_0_255_nhwc):
    """RGB [0, 255] NHWC -> Caffe input: BGR minus the (B, G, R) mean, NCHW float32."""
    x = np.asarray(images_rgb_0_255_nhwc, dtype=np.float32)[..., ::-1]
    x = x - np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def run_opencv(prototxt_path, caffemodel_path, images_bgr_minus_mean_nchw, outputs):
    """Forward ``images`` through OpenCV's Caffe importer; return the named blobs (NCHW float32).

    ``outputs`` are layer names ("prob", "loss1/prob", "inception_4d/output", ...). The plain
    OpenCV backend on CPU is used, with Winograd convolution off where the build has the switch,
    so the reference is ordinary float32 arithmetic.

    OpenCV returns a *layer's* output, not Caffe's blob: a convolution/InnerProduct name such as
    "conv1/7x7_s2" or "loss1/fc" gives the value *before* its in-place ReLU (Caffe's blob of that
    name would be after it). Ask for the ReLU layer ("conv1/relu_7x7", "loss1/relu_fc",
    "inception_3a/relu_1x1") to get the rectified value. Concat/pool/prob outputs are unaffected.
    """
    import cv2

    if isinstance(outputs, str):
        outputs = [outputs]
    outputs = list(outputs)
    net = cv2.dnn.readNetFromCaffe(str(prototxt_path), str(caffemodel_path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    if hasattr(net, "enableWinograd"):
        net.enableWinograd(False)
    net.setInput(np.ascontiguousarray(images_bgr_minus_mean_nchw, dtype=np.float32))
    blobs = net.forward(outputs)
    return {name: np.array(blob, dtype=np.float32) for name, blob in zip(outputs, blobs)}
