"""``shapes``: the built-in, offline, procedurally generated data set.

Eight classes of geometric figures (:data:`CLASS_NAMES`) are rendered with
numpy onto textured backgrounds. Every image gets a random fill colour,
size (radius 20-45% of the side), rotation and position - always fully
inside the frame - over a background mixing a colour gradient, stripes and
smooth blotches, plus pixel noise. Position, colour and texture vary so much
that a linear classifier on raw pixels stays near chance, while the figure
itself is always visible (its colour is kept away from the background's).

Everything is deterministic by seed, with independent random streams for
train, validation, test and the endless :func:`stream` of fresh training
samples. Nothing is downloaded.

Importing this module registers the tensorflow-datasets builder ``shapes``
(configs ``128px`` - the default -, ``64px`` and ``smoke``), so::

    tfds.builder("shapes", data_dir=...).download_and_prepare()

generates it locally and ``"shapes"`` is just another tfds name. Rendering is
plain NumPy; preparing the default config (12k images) takes a minute or two,
about half of it tfds' PNG encoding, and ``smoke`` a few seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core.utils import tqdm_utils

from inception_keras import defaults, logs
from inception_keras.errors import UsageError

CLASS_NAMES = ("circle", "ring", "triangle", "square", "hexagon", "star", "cross", "crescent")

#: Seed-stream ids: each split draws from its own stream so they never overlap.
STREAMS = {"train": 0, "validation": 1, "test": 2, "stream": 3}

# The smallest side written: render's largest figure and its margin need 30 pixels, and 32 is
# also GoogLeNet's smallest input (model.MIN_INPUT_SIZE), so every image written can be predicted.
MIN_IMAGE_SIZE = 32

_CHUNK = 64  # images rendered per vectorised numpy call (bounds memory)


# --------------------------------------------------------------------------
# Geometry: every figure is a union of convex polygons (or discs) in unit
# coordinates, circumradius <= 1, described by a signed distance (<0 inside).
# --------------------------------------------------------------------------
def _regular_polygon(sides: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _rectangle(half_w: float, half_h: float) -> np.ndarray:
    return np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])


_POLYGONS = {
    "triangle": [_regular_polygon(3, 1.0, np.pi / 2)],
    "square": [_regular_polygon(4, 1.0, np.pi / 4)],
    "hexagon": [_regular_polygon(6)],
    "cross": [_rectangle(0.95, 0.3), _rectangle(0.3, 0.95)],
}


def _convex_sdf(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Max over edge half-planes: exact inside, a lower bound outside, which
    is all the one-pixel anti-aliasing needs. ``polygon`` is [K, 2]."""
    twice_area = np.sum(
        polygon[:, 0] * np.roll(polygon[:, 1], -1) - np.roll(polygon[:, 0], -1) * polygon[:, 1]
    )
    if twice_area < 0:  # clockwise: reverse so edge normals point outwards
        polygon = polygon[::-1]
    edges = np.roll(polygon, -1, axis=0) - polygon
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    offsets = np.sum(normals * polygon, axis=-1)
    distance = None
    for (nx, ny), offset in zip(normals.astype(np.float32), offsets.astype(np.float32)):
        edge = x * nx + y * ny - offset
        distance = edge if distance is None else np.maximum(distance, edge, out=distance)
    return distance


def _star_sdf(x: np.ndarray, y: np.ndarray, points: int = 5, inner: float = 0.45) -> np.ndarray:
    """Folds the plane into one half-sector (the star is symmetric), where
    the outline is a single edge from the tip to an inner vertex. Unlike a
    union of convex pieces this leaves no anti-aliasing seams inside."""
    sector = np.pi / points
    angle = np.mod(np.arctan2(y, x) - np.pi / 2, 2 * sector)  # tip at angle 0
    angle = np.minimum(angle, 2 * sector - angle)  # mirror into [0, sector]
    radius = np.hypot(x, y)
    tip = np.array([1.0, 0.0])
    valley = inner * np.array([np.cos(sector), np.sin(sector)])
    normal = np.array([valley[1] - tip[1], tip[0] - valley[0]])  # outward for this edge
    normal /= np.linalg.norm(normal)
    return (radius * (np.cos(angle) * normal[0] + np.sin(angle) * normal[1]) - normal @ tip).astype(
        np.float32
    )


def _signed_distance(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (unit coordinates) of figure ``name`` at ``(x, y)``."""
    if name == "circle":
        return np.hypot(x, y) - 1.0
    if name == "ring":
        return np.abs(np.hypot(x, y) - 0.75) - 0.25
    if name == "crescent":
        return np.maximum(np.hypot(x, y) - 1.0, 0.8 - np.hypot(x - 0.45, y))
    if name == "star":
        return _star_sdf(x, y)
    return np.min([_convex_sdf(x, y, poly) for poly in _POLYGONS[name]], axis=0)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _smooth_field(rng: np.random.Generator, batch: int, size: int, cells: int = 5) -> np.ndarray:
    """Random [B, S, S, 3] blotches: a coarse grid bilinearly upsampled
    (separable interpolation matrices keep this a pair of einsums)."""
    coarse = rng.uniform(-1, 1, (batch, cells, cells, 3)).astype(np.float32)
    pos = np.linspace(0, cells - 1, size)
    lo = np.minimum(np.floor(pos).astype(int), cells - 2)
    weights = np.zeros((size, cells), np.float32)
    weights[np.arange(size), lo] = 1 - (pos - lo)
    weights[np.arange(size), lo + 1] = pos - lo
    return np.einsum("yi,bijc,xj->byxc", weights, coarse, weights, optimize=True)


def _backgrounds(rng: np.random.Generator, batch: int, size: int) -> np.ndarray:
    """Gradient + stripes + blotches, float32 [B, S, S, 3] in about 0..255."""
    grid = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")

    def directional(angle):  # [B, S, S] projection of the grid on a direction
        angle = angle.astype(np.float32)[:, None, None]
        return xs * np.cos(angle) + ys * np.sin(angle)

    start, end = rng.uniform(0, 255, (2, batch, 1, 1, 3)).astype(np.float32)
    ramp = np.clip(directional(rng.uniform(0, 2 * np.pi, batch)) + 0.5, 0, 1)[..., None]
    image = start + (end - start) * ramp

    freq = rng.uniform(2, 12, batch).astype(np.float32)[:, None, None]  # cycles per image side
    phase = rng.uniform(0, 2 * np.pi, batch).astype(np.float32)[:, None, None]
    stripes = np.sin(
        np.float32(2 * np.pi) * freq * directional(rng.uniform(0, np.pi, batch)) + phase
    )
    stripe_colour = rng.uniform(-1, 1, (batch, 1, 1, 3)) * rng.uniform(0, 50, (batch, 1, 1, 1))
    image += stripes[..., None].astype(np.float32) * stripe_colour.astype(np.float32)
    image += _smooth_field(rng, batch, size) * rng.uniform(0, 60, (batch, 1, 1, 1)).astype(
        np.float32
    )
    return image


def _fill_colours(
    rng: np.random.Generator, background: np.ndarray, masks: np.ndarray
) -> np.ndarray:
    """Random colours, replaced by a contrasting one where too close to the
    background under the figure, so every figure stays visible."""
    under = (
        np.einsum("byxc,byx->bc", background, masks) / np.maximum(masks.sum((1, 2)), 1e-6)[:, None]
    )
    colours = rng.uniform(0, 255, under.shape)
    contrasting = np.where(
        under > 127, rng.uniform(0, 50, under.shape), rng.uniform(205, 255, under.shape)
    )
    too_close = np.linalg.norm(colours - under, axis=-1, keepdims=True) < 110
    return np.where(too_close, contrasting, colours).astype(np.float32)


def render(
    labels: np.ndarray, rng: np.random.Generator, image_size: int = 128, return_masks: bool = False
):
    """Renders one image per label.

    Args:
        labels: int array [B] of indices into :data:`CLASS_NAMES`.
        rng: numpy generator; the only source of randomness.
        image_size: side of the square images.
        return_masks: also return the figures' coverage masks [B, S, S].

    Returns:
        uint8 [B, S, S, 3] (and float32 masks in [0, 1] if requested).
    """
    labels = np.asarray(labels)
    batch, size = len(labels), image_size
    radius = (rng.uniform(0.2, 0.45, batch) * size).astype(np.float32)  # circumradius in pixels
    margin = radius + 1.5  # keeps the anti-aliased edge inside the frame
    centre = rng.uniform(margin[:, None], size - margin[:, None], (batch, 2)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, batch).astype(np.float32)

    # Pixel centres relative to each figure, rotated by -angle, in radius units.
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = (grid[None, None, :] - centre[:, 0, None, None]) / radius[:, None, None]
    dy = (grid[None, :, None] - centre[:, 1, None, None]) / radius[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    x = (dx * cos + dy * sin).astype(np.float32)
    y = (dy * cos - dx * sin).astype(np.float32)

    masks = np.zeros((batch, size, size), np.float32)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        distance = _signed_distance(CLASS_NAMES[label], x[idx], y[idx])
        # Unit distance -> pixels; a 1-pixel linear ramp anti-aliases edges.
        masks[idx] = np.clip(0.5 - distance * radius[idx, None, None], 0, 1)

    background = _backgrounds(rng, batch, size)
    colours = _fill_colours(rng, background, masks)
    alpha = masks[..., None]
    image = background * (1 - alpha) + colours[:, None, None, :] * alpha
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(
        0, 12, (batch, 1, 1, 1)
    ).astype(np.float32)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return (image, masks) if return_masks else image


def _balanced_labels(rng: np.random.Generator, count: int) -> np.ndarray:
    """Class counts differ by at most one; order shuffled."""
    return rng.permutation(np.arange(count) % len(CLASS_NAMES))


def generate(
    split: str, count: int, image_size: int = 128, seed: int = 0, masks: bool = False
) -> Iterator[tuple]:
    """Yields ``(image uint8 [S, S, 3], label int)`` for a fixed-size split.

    Deterministic in ``(split, seed)`` and independent of the chunking
    caller; ``split`` picks the random stream (see :data:`STREAMS`). These
    are the images the tfds builder stores, in its order.

    With ``masks=True`` it yields ``(image, label, mask)``, the same images
    with each figure's coverage mask (float32 [S, S] in [0, 1]; its edge is
    anti-aliased over one pixel): ground truth for where a figure is, e.g.
    to score a localisation method.
    """
    stream = STREAMS[split]
    labels = _balanced_labels(np.random.default_rng([seed, stream]), count)
    for chunk, start in enumerate(range(0, count, _CHUNK)):
        chunk_labels = labels[start : start + _CHUNK]
        rng = np.random.default_rng([seed, stream, chunk + 1])
        if masks:
            images, figure_masks = render(chunk_labels, rng, image_size, return_masks=True)
            yield from zip(images, chunk_labels.tolist(), figure_masks)
        else:
            yield from zip(render(chunk_labels, rng, image_size), chunk_labels.tolist())


def write_images(
    directory: str,
    count: int = defaults.SAMPLE_IMAGES,
    image_size: int = defaults.SAMPLE_SIZE,
    split: str = "test",
    seed: int = 0,
) -> list[str]:
    """Writes ``count`` images of a split as PNG files named by their class
    (``00_circle.png`` ...), e.g. to try ``inception-keras predict``.

    Returns the paths written.
    """
    if count < 1:
        raise UsageError(f"count must be at least 1; got {count}.")
    if image_size < MIN_IMAGE_SIZE:
        raise UsageError(f"image_size must be at least {MIN_IMAGE_SIZE} pixels; got {image_size}.")
    epath.Path(directory).mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (image, label) in enumerate(generate(split, count, image_size, seed)):
        path = str(epath.Path(directory) / f"{index:02d}_{CLASS_NAMES[label]}.png")
        tf.io.write_file(path, tf.io.encode_png(image))
        paths.append(path)
    return paths


def stream(image_size: int = 128, seed: int = 0) -> tf.data.Dataset:
    """Endless ``tf.data.Dataset`` of fresh ``(image uint8, label int64)``
    training samples, on a seed stream disjoint from the fixed splits.

    Deterministic for a given ``seed``; each chunk of 64 is class-balanced.
    """

    def chunks():
        chunk = 0
        while True:
            rng = np.random.default_rng([seed, STREAMS["stream"], chunk])
            labels = _balanced_labels(rng, _CHUNK)
            yield render(labels, rng, image_size), labels.astype(np.int64)
            chunk += 1

    signature = (
        tf.TensorSpec([None, image_size, image_size, 3], tf.uint8),
        tf.TensorSpec([None], tf.int64),
    )
    return tf.data.Dataset.from_generator(chunks, output_signature=signature).unbatch()


# --------------------------------------------------------------------------
# tensorflow-datasets builder
# --------------------------------------------------------------------------
@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    """Size of the generated set; pass a custom one as
    ``tfds.builder("shapes", config=ShapesConfig(name="mine", ...))``."""

    image_size: int = 128
    num_train: int = 10_000
    num_validation: int = 1_000
    num_test: int = 1_000
    seed: int = 0


class Shapes(tfds.core.GeneratorBasedBuilder):
    """Procedurally rendered geometric figures (see module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="128px", description="128x128, 10k/1k/1k examples."),
        ShapesConfig(name="64px", description="64x64, 10k/1k/1k examples.", image_size=64),
        ShapesConfig(
            name="smoke",
            description="64x64, 512/128/128 examples, for quick pipeline checks.",
            image_size=64,
            num_train=512,
            num_validation=128,
            num_test=128,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "128px"
    # tfds derives this via the `importlib_resources` backport, which it
    # declares only for Python < 3.9 but imports on every version; setting it
    # keeps `download_and_prepare` working without that extra package.
    code_path = epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=__doc__.split("\n\n")[1],
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3)),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
            # Labels are already shuffled; keeping generation order makes
            # split contents easy to reason about (and skips tfds' shuffle).
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        counts = {
            "train": config.num_train,
            "validation": config.num_validation,
            "test": config.num_test,
        }
        return {split: self._generate_examples(split, count) for split, count in counts.items()}

    def _generate_examples(self, split: str, count: int):
        config = self.builder_config
        for index, (image, label) in enumerate(
            generate(split, count, config.image_size, config.seed)
        ):
            yield index, {"image": image, "label": label}


def is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    """``builder.is_prepared()``, without the warning tfds logs while it looks: asked about a set
    not prepared yet, tfds (4.9) logs "Variant folder ... has no dataset_info.json" - the answer
    "no" as a warning, though preparing is the next step."""
    with logs.ignoring_log_records("absl", r"^Variant folder .* has no dataset_info\.json$"):
        return builder.is_prepared()


def prepare(name: str = "shapes", data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """Returns the prepared ``shapes`` builder, generating it if needed (offline)."""
    builder = tfds.builder(name, data_dir=data_dir)
    if not is_prepared(builder):
        with _progress_bars_only_on_a_terminal():
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False)
            )
    return builder


@contextlib.contextmanager
def _progress_bars_only_on_a_terminal():
    """tfds draws its progress bars (tqdm, on stderr) whatever stderr is; in a log file they are
    redraws (carriage returns, cursor moves), not lines. tfds has a switch but no getter for it,
    hence its module attribute is read to put the caller's setting back."""
    if sys.stderr.isatty():
        yield
        return
    before = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        tfds.display_progress_bar(before)
