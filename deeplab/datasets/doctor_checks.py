"""The dataset doctor's checks of one image/label pair (see datasets/doctor.py).

Each check uses the converters' own readers (`build_data.read_image`, `LabelReader`), so a
pair the doctor passes is a pair the converter accepts with the same flags, and each problem
carries the converter flag (or action) that fixes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
from PIL import Image

from deeplab.datasets import build_data, label_encoding

FIX_UNREADABLE = "replace or remove the file (or convert with --skip_invalid to leave it out)"
FIX_SIZE = ("make the label the image's size (or convert with --skip_invalid to leave the "
            "pair out)")
FIX_MISSING = ("add the missing file, or leave the pair out (make_list --allow_unmatched, "
               "or --skip_invalid)")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A fault that would break training: the file, what is wrong, and the fix."""

    file: str
    problem: str
    fix: str


@dataclasses.dataclass
class PairResult:
    """What the doctor found about one pair.

    encoding: the label's kind (label_encoding.LabelKind.kind); image_size: (H, W) or None;
    counts: int64 [256] label pixels per value as the converter would store them, or None
    when the label cannot be used; unknown: pixels of unknown colours (set to ignore);
    digest: sha1 of the image file; arrays: (image uint8 [H, W, 3], label uint8 [H, W]) for
    the contact sheet, kept only when asked for.
    """

    name: str
    image: str
    label: str
    encoding: str = ""
    image_size: tuple[int, int] | None = None
    counts: np.ndarray | None = None
    unknown: int = 0
    digest: str | None = None
    problems: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    arrays: tuple[np.ndarray, np.ndarray] | None = None


def _range_fix(bad: np.ndarray, num_classes: int) -> str:
    fix = f"--num_classes={int(bad.max()) + 1} if these are classes"
    if bad.size == 1:
        fix += f", or --ignore_label={int(bad[0])} if it marks void pixels"
    return fix


def _check_image(result: PairResult) -> None:
    try:
        data, _, height, width, _ = build_data.read_image(result.image)
    except build_data.InvalidPairError as err:
        fix = FIX_MISSING if err.problem == "file not found" else FIX_UNREADABLE
        result.problems.append(Problem(err.path, err.problem, fix))
        return
    result.image_size = (height, width)
    result.digest = hashlib.sha1(data).hexdigest()


def _check_label(result: PairResult, reader: label_encoding.LabelReader) -> np.ndarray | None:
    kind = label_encoding.describe_label(result.label, reader.num_classes, reader.ignore_label)
    result.encoding = kind.kind
    try:
        label, result.unknown = reader.read(result.label)
    except build_data.InvalidPairError as err:
        fix = FIX_MISSING if err.problem == "file not found" else kind.fix or FIX_UNREADABLE
        result.problems.append(Problem(err.path, err.problem, fix))
        return None
    if kind.kind == "binary" and not reader.binary:
        result.problems.append(Problem(result.label, "0/255 binary mask: read as class indices "
                                       "its 255 pixels are not the object class", kind.fix))
        return None
    if "accepted" in kind.detail:
        result.notes.append(f"{result.label}: {kind.detail}")
    values = np.unique(label)
    bad = values[(values >= reader.num_classes) & (values != reader.ignore_label)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8])
        result.problems.append(Problem(
            result.label, f"label values {shown} outside [0, {reader.num_classes}) and not the "
            f"ignore label {reader.ignore_label}", _range_fix(bad, reader.num_classes)))
        return None
    return label


def check_pair(name: str, image: str, label: str, reader: label_encoding.LabelReader,
               keep_arrays: bool = False) -> PairResult:
    """Checks one pair of files as the converter would read them (see PairResult)."""
    result = PairResult(name, image, label)
    _check_image(result)
    label_array = _check_label(result, reader)
    if label_array is None or result.image_size is None:
        return result
    if label_array.shape != result.image_size:
        h, w = result.image_size
        result.problems.append(Problem(label, f"label is {label_array.shape[0]}x"
                                       f"{label_array.shape[1]} (HxW) but image {image} is "
                                       f"{h}x{w}", FIX_SIZE))
        return result
    result.counts = np.bincount(label_array.ravel(), minlength=256)
    if keep_arrays:
        with Image.open(image) as picture:
            result.arrays = (np.asarray(picture.convert("RGB")), label_array)
    return result


def check_record(name: str, image_data: bytes, label_data: bytes, num_classes: int,
                 ignore_label: int, keep_arrays: bool = False) -> PairResult:
    """Checks one record of an existing shard (PNG label bytes, JPEG/PNG image bytes)."""
    result = PairResult(name, name, name, encoding="index")
    try:
        image = Image.open(io.BytesIO(image_data))
        image.load()
        label = np.asarray(Image.open(io.BytesIO(label_data)))
    except Exception as err:  # PIL raises many types for corrupt data
        result.problems.append(Problem(name, f"cannot decode the record ({err})",
                                       "convert the split again"))
        return result
    result.image_size = (image.size[1], image.size[0])
    result.digest = hashlib.sha1(image_data).hexdigest()
    if label.ndim != 2 or label.shape != result.image_size:
        result.problems.append(Problem(name, f"label shape {label.shape} does not match the "
                                       f"image {result.image_size}", "convert the split again"))
        return result
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        result.problems.append(Problem(name, f"label values {', '.join(map(str, bad[:8]))} "
                                       f"outside [0, {num_classes}) and not the ignore label "
                                       f"{ignore_label}", _range_fix(bad, num_classes)))
        return result
    result.counts = np.bincount(label.ravel(), minlength=256)
    if keep_arrays:
        result.arrays = (np.asarray(image.convert("RGB")), label.astype(np.uint8))
    return result
