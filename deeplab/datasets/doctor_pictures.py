"""The dataset doctor's pictures: a class-frequency bar chart and a contact sheet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from deeplab.vis import colormap

THUMB_HEIGHT = 160
COLUMNS = 4


def class_frequency_chart(path: str, names: Sequence[str], pixels: Sequence[int],
                          images: Sequence[int]) -> str:
    """Bar chart of each class's share of labelled pixels (log scale) and image counts."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    pixels = np.asarray(pixels, np.float64)
    share = pixels / max(pixels.sum(), 1.0)
    x = np.arange(len(names))
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True,
                                         figsize=(max(6.0, 0.3 * len(names) + 2), 6))
    top.bar(x, np.where(share > 0, share, np.nan), color="tab:blue")
    top.set_yscale("log")
    top.set_ylabel("share of labelled pixels")
    bottom.bar(x, images, color="tab:orange")
    bottom.set_ylabel("images holding the class")
    bottom.set_xticks(x, names if len(names) <= 60 else [str(i) for i in x], rotation=90,
                      fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _thumbnail(array: np.ndarray) -> Image.Image:
    image = Image.fromarray(array)
    width = max(1, round(array.shape[1] * THUMB_HEIGHT / array.shape[0]))
    return image.resize((width, THUMB_HEIGHT), Image.NEAREST)


def contact_sheet(path: str, samples: Sequence[tuple[str, np.ndarray, np.ndarray]],
                  palette, ignore_label: int) -> str:
    """Grid of (name, image uint8 [H, W, 3], label uint8 [H, W]): the image beside its labels
    overlaid in `palette` (ignored pixels left as they are)."""
    tiles = []
    for name, image, label in samples:
        drawn = colormap.overlay(image, label, palette, 0.5, ignore_label=ignore_label)
        pair = [_thumbnail(image), _thumbnail(drawn)]
        tile = Image.new("RGB", (pair[0].width + pair[1].width + 4, THUMB_HEIGHT + 14), "white")
        tile.paste(pair[0], (0, 14))
        tile.paste(pair[1], (pair[0].width + 4, 14))
        ImageDraw.Draw(tile).text((2, 1), name[:40], fill="black")
        tiles.append(tile)
    if not tiles:
        tiles = [Image.new("RGB", (THUMB_HEIGHT, THUMB_HEIGHT), "white")]
    width, columns = max(t.width for t in tiles), min(COLUMNS, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (width + 6), rows * (tiles[0].height + 6)), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * (width + 6), (i // columns) * (tiles[0].height + 6)))
    sheet.save(path)
    return path
