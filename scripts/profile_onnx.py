"""Where ONNX Runtime's inference time goes: an op-type breakdown from ORT's own profiler, and the
layout conversions its NCHWc optimiser inserted.

    python scripts/profile_onnx.py [--variant paper|bn] [--batch 32] [--runs 6] [--model FILE.onnx]

Without ``--model`` it exports an untrained 224x224, 1000-class GoogLeNet of the variant (speed does
not depend on the weights). The README's "Performance" notes quote this script's output; it is
evidence for the benchmark's numbers (``inception-keras benchmark``), not a benchmark itself: the
profiler adds overhead.
"""

import argparse
import collections
import json
import os
import statistics
import tempfile

import numpy as np


def profile(path, batch, runs):
    """``(median ms per run, {op type: ms per run}, [(reorder node, producer, consumers)])``."""
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory() as scratch:
        options = onnxruntime.SessionOptions()  # ONNX Runtime's defaults, as OnnxRunner uses
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(scratch, "ort")
        options.optimized_model_filepath = os.path.join(scratch, "optimized.onnx")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        images = np.random.default_rng(0).uniform(0, 255, (batch, 224, 224, 3)).astype(np.float32)
        session.run(None, {"images": images})  # warm-up, excluded below
        for _ in range(runs):
            session.run(None, {"images": images})
        with open(session.end_profiling()) as f:
            events = json.load(f)
        optimized = onnx.load(options.optimized_model_filepath).graph

    model_runs = [e["dur"] / 1e3 for e in events if e.get("name") == "model_run"][1:]
    per_op = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1e3 / (runs + 1)
    producer = {output: node for node in optimized.node for output in node.output}
    consumers = collections.defaultdict(list)
    for node in optimized.node:
        for name in node.input:
            consumers[name].append(node.op_type)
    reorders = [
        (
            node.op_type,
            producer[node.input[0]].op_type if node.input[0] in producer else "graph input",
            consumers[node.output[0]],
        )
        for node in optimized.node
        if node.op_type.startswith("Reorder")
    ]
    return statistics.median(model_runs), per_op, reorders


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="paper", choices=["paper", "bn"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--model", help="an exported .onnx file instead of a fresh export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.model
        if path is None:
            from inception_keras import GoogLeNet
            from inception_keras.export.onnx import export_onnx

            path = export_onnx(GoogLeNet(variant=args.variant), os.path.join(scratch, "m.onnx"))
        run_ms, per_op, reorders = profile(path, args.batch, args.runs)
    total = sum(per_op.values())
    print(
        f"ONNX Runtime, batch {args.batch}: {run_ms:.1f} ms per run (profiled), "
        f"{args.batch / run_ms * 1e3:.1f} img/s; kernel time by op type:"
    )
    for op, ms in per_op.most_common():
        if ms / total >= 0.001:
            print(f"  {op:20s} {ms:8.1f} ms  {ms / total:6.1%}")
    print(f"NCHWc layout conversions inserted by the optimiser: {len(reorders)}")
    for op, source, targets in reorders:
        print(f"  {op}: {source} -> {', '.join(targets)}")


if __name__ == "__main__":
    main()
