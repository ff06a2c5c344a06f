"""torchvision's GoogLeNet measured the way a PyTorch user runs it at its best, for
``inception-keras benchmark --peer``: JSON on stdout (or ``--output``).

Shipped inside the package and run as a file by the peer's own Python (``./scripts/peer_env.sh``
makes one); it imports nothing of inception-keras::

    .venv-peer/bin/python inception_keras/benchmark/peer_torchvision.py --output peer.json

Training: ``googlenet(aux_logits=True)`` from scratch, SGD with momentum 0.9, loss
``main + 0.3 * aux1 + 0.3 * aux2`` (the paper's weighting, as in torchvision's reference
training script), random images and labels, in three modes: eager float32 (NCHW),
``channels_last`` float32, and ``channels_last`` with ``torch.autocast("cpu", torch.bfloat16)``.
Inference: the same model in ``eval()`` mode (aux heads off) under ``torch.inference_mode()``,
batch-1 latency and batch throughput in the same three modes. Medians after warm-up, threads =
cores. PyTorch is never imported by inception-keras itself.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torchvision

MODES = {
    "eager float32": dict(channels_last=False, bfloat16=False),
    "channels_last float32": dict(channels_last=True, bfloat16=False),
    "channels_last + autocast bfloat16": dict(channels_last=True, bfloat16=True),
}


def _prepare(model, images, channels_last):
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    return model, images


def _autocast(bfloat16):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16)


def train_rate(mode, size, batch, steps, warmup):
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    images = torch.rand(batch, 3, size, size) * 255
    labels = torch.randint(0, 1000, (batch,))
    model, images = _prepare(model.train(), images, mode["channels_last"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with _autocast(mode["bfloat16"]):
            main, aux2, aux1 = model(images)  # GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
            loss = loss_fn(main, labels) + 0.3 * loss_fn(aux1, labels) + 0.3 * loss_fn(aux2, labels)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def inference_timings(mode, size, batch, repeats, latency_repeats, warmup):
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    images = torch.rand(batch, 3, size, size) * 255
    model, images = _prepare(model, images, mode["channels_last"])
    one = images[:1].clone(memory_format=torch.channels_last if mode["channels_last"] else None)

    def timed(x, runs):
        times = []
        for run in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if run >= warmup:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    with torch.inference_mode(), _autocast(mode["bfloat16"]):
        latency = timed(one, latency_repeats)
        throughput = batch / timed(images, repeats)
    return latency * 1e3, throughput


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps / batches (medians)")
    parser.add_argument("--latency-repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--sections", default="train,inference")
    parser.add_argument("--output", help="write the JSON here instead of stdout")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count())  # threads = cores, like the benchmark's own runs
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {list(MODES)}")
    sections = args.sections.split(",")
    report = dict(
        peer="torchvision googlenet",
        versions=dict(torch=torch.__version__, torchvision=torchvision.__version__),
        machine=dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count()),
        threads=torch.get_num_threads(),
        config=dict(
            image_size=args.image_size,
            batch_size=args.batch_size,
            repeats=args.repeats,
            latency_repeats=args.latency_repeats,
            warmup=args.warmup,
        ),
        train=[],
        inference=[],
    )
    for name in modes:
        mode = MODES[name]
        if "train" in sections:
            rate = train_rate(mode, args.image_size, args.batch_size, args.repeats, args.warmup)
            report["train"].append(dict(mode=name, bfloat16=mode["bfloat16"], images_per_sec=rate))
            print(f"  peer train {name}: {rate:.1f} img/s", file=sys.stderr, flush=True)
        if "inference" in sections:
            latency, rate = inference_timings(
                mode,
                args.image_size,
                args.batch_size,
                args.repeats,
                args.latency_repeats,
                args.warmup,
            )
            report["inference"].append(
                dict(mode=name, bfloat16=mode["bfloat16"], latency_ms=latency, images_per_sec=rate)
            )
            print(
                f"  peer inference {name}: {latency:.2f} ms batch-1, {rate:.1f} img/s",
                file=sys.stderr,
                flush=True,
            )
    text = json.dumps(report, indent=2)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
