"""Dataset descriptors: class count, ignore label, split sizes and class names.

Built-in descriptors follow the original DeepLab (data_generator.py). A directory of shards
written by the list converter or the synthetic generator also holds `dataset.json`, which
`load_descriptor` reads in preference to the built-in table.
"""

from __future__ import annotations

import dataclasses
import json
import os

DESCRIPTOR_FILE = "dataset.json"

PASCAL_VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

# Index 0 ("other") is the ignore label of ADE20K; 1..150 are the SceneParsing classes.
ADE20K_CLASSES = (
    "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed",
    "windowpane", "grass", "cabinet", "sidewalk", "person", "earth", "door", "table",
    "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa", "shelf",
    "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock",
    "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator",
    "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door",
    "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower",
    "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt",
    "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)  # fmt: skip

# Each object class is a colour + texture; shapes are drawn at random for every class.
SYNTHETIC_CLASSES = (
    "background", "red_hstripes", "green_checker", "blue_dots", "yellow_vstripes",
    "magenta_diagonal",
)


@dataclasses.dataclass(frozen=True)
class DatasetDescriptor:
    """What a training or evaluation run needs to know about a dataset.

    Attributes:
      name: dataset name, e.g. "pascal_voc_seg".
      num_classes: number of classes the model predicts (label values 0..num_classes-1).
      ignore_label: label value excluded from loss and metrics (may lie inside the class
        range, as ADE20K's 0).
      splits: split name -> number of examples.
      class_names: one name per class index, len == num_classes (or empty if unknown).
    """

    name: str
    num_classes: int
    ignore_label: int
    splits: dict[str, int]
    class_names: tuple[str, ...] = ()

    def __post_init__(self):
        if self.num_classes < 1 or self.num_classes > 256:
            raise ValueError(f"num_classes must be in [1, 256] (8-bit labels), "
                             f"got {self.num_classes}")
        if not 0 <= self.ignore_label <= 255:
            raise ValueError(f"ignore_label must be in [0, 255], got {self.ignore_label}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for "
                             f"{self.num_classes} classes")
        object.__setattr__(self, "splits", dict(self.splits))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def to_json(self) -> dict:
        """A JSON-ready dict (the `dataset.json` format)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "splits": dict(sorted(self.splits.items())),
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_json(cls, data: dict, name: str | None = None) -> DatasetDescriptor:
        """Builds a descriptor from a `dataset.json` dict; `name` overrides a missing name."""
        try:
            return cls(
                name=str(data.get("name") or name or "custom"),
                num_classes=int(data["num_classes"]),
                ignore_label=int(data["ignore_label"]),
                splits={str(k): int(v) for k, v in data.get("splits", {}).items()},
                class_names=tuple(str(c) for c in data.get("class_names", ())),
            )
        except KeyError as err:
            raise ValueError(f"dataset descriptor lacks the field {err.args[0]!r}") from None


_BUILTIN = {
    d.name: d
    for d in (
        DatasetDescriptor(
            "pascal_voc_seg", 21, 255,
            {"train": 1464, "train_aug": 10582, "trainval": 2913, "val": 1449},
            PASCAL_VOC_CLASSES,
        ),
        DatasetDescriptor(
            "cityscapes", 19, 255, {"train_fine": 2975, "val_fine": 500}, CITYSCAPES_CLASSES
        ),
        DatasetDescriptor("ade20k", 151, 0, {"train": 20210, "val": 2000}, ADE20K_CLASSES),
        DatasetDescriptor("synthetic", 6, 255, {"train": 320, "val": 80}, SYNTHETIC_CLASSES),
    )
}  # fmt: skip

BUILTIN_NAMES = tuple(_BUILTIN)


def get_descriptor(name: str) -> DatasetDescriptor:
    """The built-in descriptor `name` ("pascal_voc_seg", "cityscapes", "ade20k", "synthetic")."""
    try:
        return _BUILTIN[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; built-in datasets: "
                         f"{', '.join(BUILTIN_NAMES)}") from None


def read_descriptor_file(path: str) -> DatasetDescriptor:
    """Reads a `dataset.json` file; errors name the file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return DatasetDescriptor.from_json(data)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: cannot read dataset descriptor: {err}") from None


def write_descriptor(dataset_dir: str, descriptor: DatasetDescriptor) -> str:
    """Writes `dataset_dir/dataset.json` atomically; returns its path."""
    path = os.path.join(dataset_dir, DESCRIPTOR_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(descriptor.to_json(), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def load_descriptor(dataset_dir: str | None, name: str | None = None) -> DatasetDescriptor:
    """The descriptor of `dataset_dir`: its `dataset.json` if present, else built-in `name`.

    Raises ValueError when neither is available.
    """
    path = os.path.join(dataset_dir, DESCRIPTOR_FILE) if dataset_dir else None
    if path and os.path.isfile(path):
        return read_descriptor_file(path)
    if name is None:
        raise ValueError(f"no {DESCRIPTOR_FILE} in {dataset_dir!r} and no dataset name given")
    return get_descriptor(name)
