"""The project's performance goals, as data: each is checked on one benchmark run's numbers
(:func:`inception_keras.benchmark.report.targets`) and printed with the ratio it reached."""

# The performance goals, each checked on one run's numbers: (name, goal as text, threshold).
# The goals against torchvision need its figures from the same run (``peer``).
GOALS = {
    "fp32_training": ("training fp32 reaches a share of the fp32 roofline", ">= 80%", 0.8),
    "fp32_training_peer": ("training fp32 against torchvision's best fp32", ">= 1.2x", 1.2),
    "bf16_training_peer": ("training bf16 against torchvision's best bf16", ">= 1.3x", 1.3),
    "pipeline": ("the input pipeline outpaces the fastest training step", ">= 3x", 3.0),
    "fp32_inference": (
        "the best fp32 artefact at batch 1 reaches a share of the roofline",
        ">= 90%",
        0.9,
    ),
    "fp32_inference_peer": (
        "the best fp32 artefact against torchvision's best fp32, batch-1 latency",
        ">= 2x",
        2.0,
    ),
    "int8": ("TFLite int8 is faster than float32 at batch 1", ">= 3x", 3.0),
}
