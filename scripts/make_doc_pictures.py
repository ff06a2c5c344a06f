"""Draws the pictures of README's "Seeing what the network looks at" and prints its table.

    python scripts/make_doc_pictures.py --model runs/quickstart/best.keras

Renders validation images of the built-in shapes set (the generator's, at the checkpoint's input
size), writes ``docs/gradcam.png`` (an image of each of five classes with its Grad-CAM map at
``--layer``) and ``docs/branches.png`` (the branch shares over ``--images`` validation images),
and prints the branch-share table and the pointing game per layer (how often the Grad-CAM map's
maximum falls in the figure, or in its extent, against a random point and the image centre).
"""

import argparse
import os

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels

# isort: split
import numpy as np

from inception_keras import explain, explained_files, localisation, shapes
from inception_keras.plots import save_png
from inception_keras.plots.explain import draw_branch_shares, draw_gradcam_grid

DOCS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/quickstart/best.keras")
    parser.add_argument("--layer", default=explain.DEFAULT_LAYER)
    parser.add_argument("--images", type=int, default=400, help="images for the branch shares")
    parser.add_argument("--output", default=DOCS)
    args = parser.parse_args()

    model, names = explained_files.load_checkpoint(args.model)
    size = model.input_shape[1]
    examples = list(shapes.generate("validation", args.images, size, seed=0, masks=True))
    images = np.stack([image for image, _, _ in examples]).astype(np.float32)
    labels = np.array([label for _, label, _ in examples])
    masks = np.stack([mask for _, _, mask in examples])

    # The first image of each of the first five classes (a small picture for the README).
    picked = [int(np.flatnonzero(labels == c)[0]) for c in range(min(5, len(names)))]
    result = explain.explain(model, images[picked], layer=args.layer)
    titles = [f"{names[c]} {p[c]:.0%}" for c, p in zip(result.class_indices, result.probabilities)]
    grid = draw_gradcam_grid(images[picked], result.heatmaps, titles, layer=args.layer)
    print("wrote", save_png(grid, os.path.join(args.output, "gradcam.png")))

    shares = explain.branch_attribution(model, images)
    print(shares.format(names))
    figure = draw_branch_shares(shares, names, f"{args.model}, validation split of shapes/{size}px")
    print("wrote", save_png(figure, os.path.join(args.output, "branches.png")))

    print(f"\nPointing game, {len(images)} validation images (an all-zero map counts as a miss):")
    figures, extents = masks > 0.5, localisation.figure_extents(masks)
    print(f"{'layer':<14} {'map':>5} {'in the figure':>14} {'in its extent':>14} {'all-zero':>9}")
    for layer in ("conv2", *explain.BLOCKS):
        heatmaps = explain.grad_cam(model, images, layer=layer)
        side = model.get_layer(layer).output.shape[1]
        in_figure = localisation.pointing_hits(heatmaps, figures).mean()
        in_extent = localisation.pointing_hits(heatmaps, extents).mean()
        empty = np.mean(heatmaps.max(axis=(1, 2)) <= 0)
        shape = f"{side}x{side}"
        print(f"{layer:<14} {shape:>5} {in_figure:>14.1%} {in_extent:>14.1%} {empty:>9.1%}")
    for name, figure_hits, extent_hits in (
        ("random point", figures.mean(), extents.mean()),
        ("image centre", *(localisation.centre_hits(r).mean() for r in (figures, extents))),
    ):
        print(f"{name:<14} {'':>5} {figure_hits:>14.1%} {extent_hits:>14.1%}")


if __name__ == "__main__":
    main()
