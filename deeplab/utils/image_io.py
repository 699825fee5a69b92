"""Reading images and arrays that users hand to the commands, and writing label maps."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")  # the images of a directory input


class InputError(ValueError):
    """An input file that cannot be used; the message names the file."""


def load_image(path: str, keep_uint8: bool = False) -> np.ndarray:
    """A PNG/JPEG image or a .npy array -> float32 [H, W, 3] raw pixel values.

    Images in other modes (grayscale, palette, RGBA, 16-bit) are converted to 8-bit RGB; a
    photo's EXIF orientation is applied (the pixels come upright, as viewers show them).
    Arrays may be [H, W, 3] or [1, H, W, 3], float or uint8. keep_uint8: 8-bit sources come
    back as uint8 (the same values in a quarter of the memory; for very large images).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    if path.lower().endswith(".npy"):
        return _load_array(path)
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.mode == "I;16" or image.mode == "I":
                array = np.asarray(image, np.float64)
                array = np.repeat((array / max(array.max(), 1) * 255.0)[..., None], 3, -1)
                return array.astype(np.float32)
            return np.asarray(image.convert("RGB"), np.uint8 if keep_uint8 else np.float32)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None


def image_files(directory: str) -> list[str]:
    """The images (IMAGE_SUFFIXES and .npy) directly inside `directory`, sorted by name;
    InputError when there are none."""
    found = sorted(os.path.join(directory, name) for name in os.listdir(directory)
                   if name.lower().endswith(IMAGE_SUFFIXES + (".npy",))
                   and os.path.isfile(os.path.join(directory, name)))
    if not found:
        raise InputError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)} or .npy) in "
                         "this directory")
    return found


def _load_array(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 1:
        raise InputError(f"{path}: array of shape {list(array.shape)}; expected [H, W, 3] or "
                         "[1, H, W, 3] raw pixel values")
    if not (np.issubdtype(array.dtype, np.floating) or array.dtype == np.uint8):
        raise InputError(f"{path}: array of dtype {array.dtype}; expected float or uint8")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputError(f"{path}: array holds NaN or infinite values")
    return array


def save_label_png(label: np.ndarray, path: str) -> None:
    """Writes a label map [H, W] (class indices 0..255) as an 8-bit grayscale PNG."""
    label = np.asarray(label)
    if label.min() < 0 or label.max() > 255:
        raise ValueError(f"{path}: label values {label.min()}..{label.max()} do not fit uint8")
    Image.fromarray(label.astype(np.uint8), mode="L").save(path)


def save_palette_png(label: np.ndarray, colormap: np.ndarray, path: str) -> None:
    """Writes a label map [H, W] (class indices 0..255) as a P-mode PNG: the pixel values are
    the class ids (as save_label_png), shown in the colours of `colormap` (uint8 [N, 3] RGB,
    the VOC / Cityscapes convention)."""
    label = np.asarray(label)
    if label.min() < 0 or label.max() > 255:
        raise ValueError(f"{path}: label values {label.min()}..{label.max()} do not fit uint8")
    palette = np.zeros((256, 3), np.uint8)
    colours = np.asarray(colormap, np.uint8)[:256]
    palette[:len(colours)] = colours
    image = Image.fromarray(label.astype(np.uint8), mode="L").convert("P")
    image.putpalette(palette.ravel().tolist())
    image.save(path)
