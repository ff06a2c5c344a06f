"""Pictures of :mod:`inception_keras.explain`: Grad-CAM overlays and the branch shares.

Each drawing function returns its ``Figure`` (see :mod:`inception_keras.plots`);
:func:`save_explanations` writes the pictures of
:func:`inception_keras.explained_files.explain_files`.
"""

import os

import numpy as np

from inception_keras.errors import UsageError
from inception_keras.plots import new_figure, save_png

COLORMAP = "jet"  # Grad-CAM's customary map: red where the class's evidence is strongest
ALPHA = 0.4  # the map over the image: both stay visible
DEFAULT_TOP_K = 3
# One colour per branch, in concatenation order (1x1, 3x3, 5x5, pool), told apart in colour
# blindness too (Okabe-Ito).
BRANCH_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")


def _pixels(image):
    """uint8 RGB for imshow from float pixels in [0, 255]."""
    return np.clip(np.round(np.asarray(image, np.float64)), 0, 255).astype(np.uint8)


def draw_gradcam(image, heatmap, label, probability, top_k=(), layer=None, predicted=None):
    """One image, its Grad-CAM map, and the map over the image.

    Args:
        image: float RGB ``[H, W, 3]`` in [0, 255] (as the model saw it).
        heatmap: ``[H, W]`` in [0, 1].
        label, probability: the explained class's name and probability (the title).
        top_k: ``[(name, probability), ...]`` listed under the pictures, most probable first.
        layer: the layer the map comes from, named in the picture.
        predicted: the predicted class's name when the explained class is another one.

    Returns:
        The ``Figure``: the image, the map alone (colour bar beside), and the map
        (``COLORMAP`` at ``ALPHA``) over the image, each 3 inches wide whatever the image's
        size; pixels drawn as squares (nearest), the map smoothed (bilinear).
    """
    figure = new_figure(10.0, 4.0)
    image_axes, map_axes, overlay_axes = figure.subplots(1, 3)
    pixels = _pixels(image)
    heatmap = np.asarray(heatmap)
    image_axes.imshow(pixels, interpolation="nearest")
    image_axes.set_title("image", fontsize=10)
    map_axes.imshow(heatmap, cmap=COLORMAP, vmin=0, vmax=1, interpolation="bilinear")
    map_axes.set_title(f"Grad-CAM{f' at {layer}' if layer else ''}", fontsize=10)
    overlay_axes.imshow(pixels, interpolation="nearest")
    overlay_axes.imshow(
        heatmap, cmap=COLORMAP, alpha=ALPHA, vmin=0, vmax=1, interpolation="bilinear"
    )
    overlay_axes.set_title("over the image", fontsize=10)
    for axes in (image_axes, map_axes, overlay_axes):
        axes.set_xticks([])
        axes.set_yticks([])
    bar = figure.colorbar(map_axes.images[0], ax=map_axes, fraction=0.046, pad=0.03)
    bar.set_label("evidence for the class (relative)", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    title = f"{label}  {probability:.1%}"
    if predicted is not None and predicted != label:
        title = f"explaining {label} ({probability:.1%}); predicted: {predicted}"
    figure.suptitle(title, fontsize=14, fontweight="bold")
    notes = []
    if not np.any(heatmap > 0):
        notes.append(f"no positive evidence for {label} at this layer: the map is zero")
    if top_k:
        notes.append("top classes: " + ", ".join(f"{name} {p:.1%}" for name, p in top_k))
    if notes:
        figure.supxlabel("\n".join(notes), fontsize=10)
    return figure


def draw_gradcam_grid(images, heatmaps, titles, layer=None):
    """Several images (columns, titled each): the image, its Grad-CAM map, the map over it."""
    count = len(images)
    figure = new_figure(1.1 * count + 0.3, 3.6)
    axes = np.asarray(figure.subplots(3, count, squeeze=False))
    for column, (image, heatmap, title) in enumerate(zip(images, heatmaps, titles)):
        top, middle, bottom = axes[:, column]
        top.imshow(_pixels(image), interpolation="nearest")
        middle.imshow(heatmap, cmap=COLORMAP, vmin=0, vmax=1, interpolation="bilinear")
        bottom.imshow(_pixels(image), interpolation="nearest")
        bottom.imshow(heatmap, cmap=COLORMAP, alpha=ALPHA, vmin=0, vmax=1, interpolation="bilinear")
        top.set_title(title, fontsize=9)
        for a in (top, middle, bottom):
            a.set_xticks([])
            a.set_yticks([])
    axes[1, 0].set_ylabel("Grad-CAM" + (f"\n{layer}" if layer else ""), fontsize=8)
    axes[2, 0].set_ylabel("overlay", fontsize=8)
    return figure


def draw_branch_shares(attribution, class_names=None, subtitle=None):
    """Stacked bars: per block (network order) its four branches' shares of the attribution.

    Short black marks on each bar show where the branches' shares of the block's *channels*
    would put the boundaries, so a branch carrying more than its width stands out.

    Args:
        attribution: an :class:`inception_keras.explain.BranchAttribution`.
        class_names: names for the title (class indices otherwise).
        subtitle: a second line for the title (e.g. the model).

    Returns:
        The ``Figure``; its bars hold the shares in percent.
    """
    figure = new_figure(8.0, 4.6)
    axes = figure.subplots()
    shares = 100 * np.asarray(attribution.shares)
    positions = np.arange(len(attribution.blocks))
    bottom = np.zeros(len(positions))
    for i, (branch, label) in enumerate(zip(attribution.branches, attribution.labels)):
        axes.bar(
            positions,
            shares[:, i],
            bottom=bottom,
            width=0.7,
            color=BRANCH_COLOURS[i],
            label=f"{branch}: {label}",
        )
        bottom += shares[:, i]
    channel_edges = 100 * np.cumsum(attribution.channel_shares, axis=1)[:, :-1]
    for position, edges in zip(positions, channel_edges):
        axes.hlines(edges, position - 0.35, position + 0.35, colors="black", linewidth=1.5)
    axes.set_xticks(positions, [b.replace("inception_", "") for b in attribution.blocks])
    axes.set_xlabel("inception block")
    axes.set_ylabel("share of sum |dz/dA · A| (%)")
    axes.set_ylim(0, 100)
    axes.set_xlim(-0.6, len(positions) - 0.4)
    (boundary,) = axes.plot([], [], color="black", linewidth=1.5)
    # The legend lists the branches top to bottom as they are stacked, then the marks.
    handles, labels = axes.get_legend_handles_labels()
    axes.legend(
        handles[::-1] + [boundary],
        labels[::-1] + ["boundaries if shares\nfollowed the channels"],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=9,
        frameon=False,
    )
    classes = _class_text(attribution.class_indices, class_names)
    count = len(attribution.class_indices)
    title = f"Which branch carries the decision: {classes}, {count} image{'s' * (count != 1)}"
    axes.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    return figure


def _class_text(class_indices, class_names):
    unique = list(dict.fromkeys(int(c) for c in class_indices))
    names = [class_names[c] if class_names else str(c) for c in unique]
    if len(names) > 3:
        return f"{len(names)} classes"
    return " / ".join(names)


def save_explanations(explained, output_dir, top_k=DEFAULT_TOP_K):
    """Writes one overlay per image (``<stem>_gradcam.png``) and, when the branch shares were
    computed, ``branches.png``, into ``output_dir`` (created if needed).

    Args:
        explained: an :class:`inception_keras.explained_files.ExplainedFiles`.
        output_dir: the folder for the pictures.
        top_k: classes listed in each picture (0: none).

    Returns:
        ``(pictures, branches)``: the overlay paths in the images' order, and the branch
        picture's path or ``None``.
    """
    if top_k < 0:
        raise UsageError(f"`top_k` must be 0 or more; got {top_k}.")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UsageError(f"output {output_dir!r} is a file, not a folder.")
    os.makedirs(output_dir, exist_ok=True)
    explanation, names = explained.explanation, explained.class_names
    pictures, taken = [], set()
    if explanation is None:
        return pictures, None
    tops = explanation.top_k(top_k) if top_k else [[] for _ in explained.paths]
    for i, path in enumerate(explained.paths):
        stem = os.path.splitext(os.path.basename(path))[0]
        name, n = f"{stem}_gradcam.png", 2
        while name in taken:  # two inputs with one file name, from different folders
            name, n = f"{stem}_{n}_gradcam.png", n + 1
        taken.add(name)
        chosen = int(explanation.class_indices[i])
        figure = draw_gradcam(
            explained.images[i],
            explanation.heatmaps[i],
            names[chosen],
            float(explanation.probabilities[i, chosen]),
            top_k=[(names[c], p) for c, p in tops[i]],
            layer=explanation.layer,
            predicted=names[int(explanation.predicted[i])],
        )
        pictures.append(save_png(figure, os.path.join(output_dir, name)))
    branches = None
    if explanation.branches is not None:
        figure = draw_branch_shares(explanation.branches, names, os.fspath(explained.model))
        branches = save_png(figure, os.path.join(output_dir, "branches.png"))
    return pictures, branches
