"""Exporters: the inference model (aux heads stripped, averaged weights, softmax out, raw RGB pixels
in [0, 255] in) as a SavedModel for TF Serving, TFLite models for LiteRT, and an ONNX model for ONNX
Runtime. One module per format; each also provides a runner that loads its artefact in the runtime
that will serve it and maps a float32 [B, H, W, 3] batch to class probabilities.
"""
