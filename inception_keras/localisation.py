"""The pointing game (Zhang et al., ECCV 2016): how often a saliency map's maximum falls inside
the object, here the built-in shapes' figures, whose masks the generator knows
(``shapes.generate(..., masks=True)``). NumPy only.

Written here because the CAM libraries (pytorch-grad-cam and its kin) score maps of PyTorch
models and take the object's box, not a mask; the dozen lines below are the whole method.
"""

import numpy as np


def figure_extents(masks, directions=360):
    """Each figure's extent: the convex hull of its pixels (``mask > 0.5``), by support functions
    in ``directions`` directions, so that a ring's hole and a crescent's hollow count as the
    figure's. ``masks`` [B, H, W] in [0, 1]; returns bool [B, H, W]."""
    masks = np.asarray(masks)
    height, width = masks.shape[1:]
    angles = np.linspace(0, 2 * np.pi, directions, endpoint=False)
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ys, xs = np.mgrid[0:height, 0:width]
    projections = np.stack([ys.ravel(), xs.ravel()], 1).astype(float) @ unit.T
    return np.stack(
        [
            (projections <= projections[m.ravel() > 0.5].max(0) + 1e-9)
            .all(1)
            .reshape(height, width)
            for m in masks
        ]
    )


def peak(heatmap):
    """``(y, x)`` of a map's maximum, or None for a map that is zero everywhere.

    The centroid of the pixels at the peak, rounded: bilinear upsampling holds a border cell's
    value flat out to the image's edge, so the peak is often a plateau whose first pixel would
    always lie on the border.
    """
    heatmap = np.asarray(heatmap)
    top = heatmap.max()
    if top <= 0:
        return None
    y, x = np.round(np.argwhere(heatmap == top).mean(axis=0)).astype(int)
    return int(y), int(x)


def pointing_hits(heatmaps, regions):
    """bool [B]: each map's :func:`peak` inside its region (bool [B, H, W]); a map that is zero
    everywhere points nowhere and misses."""
    hits = []
    for heatmap, region in zip(heatmaps, regions):
        point = peak(heatmap)
        hits.append(point is not None and bool(region[point]))
    return np.array(hits, dtype=bool)


def centre_hits(regions):
    """bool [B]: the image's centre pixel inside each region - the baseline a map must beat."""
    regions = np.asarray(regions)
    height, width = regions.shape[1:]
    return regions[:, height // 2, width // 2].astype(bool)
