"""Dataset descriptors and the dataset registry.

A descriptor says what a run needs to know about a dataset: class count, ignore label,
split sizes, class names, its colour map (a palette name or RGB colours), official label ids
(Cityscapes) and, for converted data, how the masks were read and per-class pixel counts.
The registered datasets live one module each in `deeplab.data.builtin`; a directory of
shards holds `dataset.json`, which `load_descriptor` reads in preference to the registry.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from deeplab.utils.atomic import write_json_atomically
from deeplab.utils.registry import Registry

DESCRIPTOR_FILE = "dataset.json"
STAT_KEYS = ("pixels", "images", "image_pixels")



def _colors(value) -> tuple[tuple[int, int, int], ...]:
    """RGB colours [N, 3] (any nested sequence or array of 0..255) as a tuple of triples."""
    array = np.asarray(value)
    if array.ndim != 2 or array.shape[1] != 3 or not len(array) or \
            not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
        raise ValueError(f"a colour map must be [N, 3] integers 0..255, got shape "
                         f"{array.shape} dtype {array.dtype}")
    return tuple((int(r), int(g), int(b)) for r, g, b in array)


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
      colormap: colours for drawing labels: a palette name (a registered dataset or alias,
        e.g. "pascal"), RGB colours [N, 3] indexed by label value, or None (the default).
      label_ids: class index (and ignore label) -> official label id, for datasets whose
        benchmark scores other ids than the model predicts (Cityscapes); empty otherwise.
      label_encoding: how a converter read the masks, e.g. {"label_colormap": "pascal",
        "unknown_color_pixels": 12} or {"binary_masks": True}; empty for class-index PNGs.
      class_statistics: split -> {"pixels": [C] labelled pixels per class, "images": [C]
        images holding the class, "image_pixels": [C] labelled pixels of those images,
        "ignore_pixels": int}, as counted by the converters.
    """

    name: str
    num_classes: int
    ignore_label: int
    splits: dict[str, int]
    class_names: tuple[str, ...] = ()
    colormap: object = None
    label_ids: dict[int, int] = dataclasses.field(default_factory=dict)
    label_encoding: dict = dataclasses.field(default_factory=dict)
    class_statistics: dict[str, dict] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.num_classes < 1 or self.num_classes > 256:
            raise ValueError(f"num_classes must be in [1, 256] (8-bit labels), "
                             f"got {self.num_classes}")
        if not 0 <= self.ignore_label <= 255:
            raise ValueError(f"ignore_label must be in [0, 255], got {self.ignore_label}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for "
                             f"{self.num_classes} classes")
        for split, stats in self.class_statistics.items():
            for key in STAT_KEYS:
                if len(stats.get(key, ())) != self.num_classes:
                    raise ValueError(f"{self.name}: class_statistics[{split!r}][{key!r}] needs "
                                     f"{self.num_classes} values")
        colormap = self.colormap
        if colormap is not None and not isinstance(colormap, str):
            colormap = _colors(colormap)
        set_ = object.__setattr__
        set_(self, "colormap", colormap)
        set_(self, "splits", dict(self.splits))
        set_(self, "class_names", tuple(self.class_names))
        set_(self, "label_ids", {int(k): int(v) for k, v in self.label_ids.items()})
        set_(self, "label_encoding", dict(self.label_encoding))
        set_(self, "class_statistics", {str(k): dict(v) for k, v in
                                        self.class_statistics.items()})

    def to_label_ids(self, label) -> np.ndarray:
        """Maps class indices to the official label ids (`label_ids`); uint8, same shape.

        Raises ValueError naming values the table does not hold.
        """
        label = np.asarray(label)
        table = np.zeros(256, np.uint8)
        known = np.zeros(256, bool)
        for index, label_id in self.label_ids.items():
            table[index], known[index] = label_id, True
        inside = (label >= 0) & (label < 256)
        valid = inside & known[np.where(inside, label, 0)]
        if not valid.all():
            keys = sorted(self.label_ids)
            raise ValueError(f"{self.name} label values must be among {keys[0]}.."
                             f"{keys[-2] if len(keys) > 1 else keys[0]} or {keys[-1]}, got "
                             f"{np.unique(label[~valid])[:10].tolist()}")
        return table[label]

    def to_json(self) -> dict:
        """A JSON-ready dict (the `dataset.json` format); optional fields only when set."""
        data = {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "splits": dict(sorted(self.splits.items())),
            "class_names": list(self.class_names),
        }
        colormap = _colormap_json(self)
        optional = {"colormap": colormap,
                    "label_ids": {str(k): v for k, v in sorted(self.label_ids.items())},
                    "label_encoding": self.label_encoding,
                    "class_statistics": dict(sorted(self.class_statistics.items()))}
        data.update({k: v for k, v in optional.items() if v not in (None, {}, [])})
        return data

    @classmethod
    def from_json(cls, data: dict, name: str | None = None) -> DatasetDescriptor:
        """Builds a descriptor from a `dataset.json` dict; `name` overrides a missing name.

        A registered dataset's class names, colour map and label ids fill fields the file
        does not hold (files written before those fields existed). A palette name in the
        file becomes that palette's colours.
        """
        try:
            name = str(data.get("name") or name or "custom")
            known = DATASETS.get(name)
            colormap = data.get("colormap", known.colormap if known else None)
            return cls(
                name=name,
                num_classes=int(data["num_classes"]),
                ignore_label=int(data["ignore_label"]),
                splits={str(k): int(v) for k, v in data.get("splits", {}).items()},
                class_names=tuple(str(c) for c in data.get("class_names", ())) or
                (known.class_names if known and known.num_classes == int(data["num_classes"])
                 else ()),
                colormap=palette(colormap) if isinstance(colormap, str) else colormap,
                label_ids=data.get("label_ids", known.label_ids if known else {}),
                label_encoding=data.get("label_encoding", {}),
                class_statistics=data.get("class_statistics", {}),
            )
        except KeyError as err:
            raise ValueError(f"dataset descriptor lacks the field {err.args[0]!r}") from None


def _colormap_json(descriptor: DatasetDescriptor):
    """The colour map for dataset.json: a name when it is a registered palette, else a list."""
    colormap = descriptor.colormap
    if colormap is None or isinstance(colormap, str):
        return colormap
    for name, known in DATASETS.items():
        if known.colormap == colormap:
            return _PALETTE_NAMES.get(name, name)
    return [list(c) for c in colormap]


# --- the registry -----------------------------------------------------------------------

def _load_builtin(registry) -> None:
    from deeplab.data import builtin

    builtin.register_all(register)


# The registered datasets, the built-in modules registered on first use (once, thread-safe).
DATASETS: Registry[DatasetDescriptor] = Registry("dataset", load=_load_builtin)
_ALIASES: dict[str, str] = {}  # palette alias -> dataset name
_PALETTE_NAMES: dict[str, str] = {}  # dataset name -> the palette name shown to users


def register(descriptor: DatasetDescriptor, palette_aliases=()) -> DatasetDescriptor:
    """Adds a dataset (by its name) to the registry; its palette gets the names `aliases`.

    Raises ValueError if the name or an alias is taken by another dataset.
    """
    for key in (descriptor.name, *palette_aliases):
        owner = _ALIASES.get(key, key if key in DATASETS else None)
        if owner is not None:
            raise ValueError(f"dataset or palette name {key!r} is already registered")
    DATASETS.register(descriptor.name, descriptor)
    for alias in palette_aliases:
        _ALIASES[alias] = descriptor.name
    if palette_aliases:
        _PALETTE_NAMES[descriptor.name] = palette_aliases[0]
    return descriptor


def unregister(name: str) -> None:
    """Removes a registered dataset and its palette aliases (for tests and plugins)."""
    DATASETS.unregister(name)
    _PALETTE_NAMES.pop(name, None)
    for alias in [a for a, owner in _ALIASES.items() if owner == name]:
        del _ALIASES[alias]


def registered_names() -> tuple[str, ...]:
    """Names of the registered datasets, in registration order."""
    return DATASETS.names()


def get_descriptor(name: str) -> DatasetDescriptor:
    """The registered descriptor `name` ("pascal_voc_seg", "cityscapes", "ade20k", ...)."""
    return DATASETS.lookup(name)


def palette_owner(name: str) -> DatasetDescriptor:
    """The registered dataset whose palette `name` (dataset name or alias) denotes."""
    registry = DATASETS
    key = _ALIASES.get(name.lower(), name.lower())
    descriptor = registry.get(key)
    if descriptor is None or descriptor.colormap is None:
        raise ValueError(f"unknown colour map {name!r}; expected one of "
                         f"{', '.join(palette_names())} (or a dataset name)")
    return descriptor


def palette(name: str) -> tuple[tuple[int, int, int], ...]:
    """RGB colours of the palette `name` (a registered dataset's, by its name or an alias)."""
    colormap = palette_owner(name).colormap
    return palette(colormap) if isinstance(colormap, str) else colormap


def palette_name(name: str) -> str:
    """The name users see for the palette `name` ("pascal_voc_seg" -> "pascal")."""
    owner = palette_owner(name)
    if isinstance(owner.colormap, str):
        return palette_name(owner.colormap)
    for other in DATASETS.values():  # datasets that reuse another's colours
        if other.colormap == owner.colormap:
            return _PALETTE_NAMES.get(other.name, other.name)
    return owner.name


def palette_names() -> tuple[str, ...]:
    """One name per distinct registered palette: ("pascal", "cityscapes", "ade20k", ...)."""
    names = []
    for descriptor in DATASETS.values():
        if descriptor.colormap is not None:
            name = palette_name(descriptor.name)
            if name not in names:
                names.append(name)
    return tuple(names)


# --- dataset.json -----------------------------------------------------------------------


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
    return write_json_atomically(os.path.join(dataset_dir, DESCRIPTOR_FILE), descriptor.to_json())


def load_descriptor(dataset_dir: str | None, name: str | None = None) -> DatasetDescriptor:
    """The descriptor of `dataset_dir`: its `dataset.json` if present, else registered `name`.

    Raises ValueError when neither is available.
    """
    path = os.path.join(dataset_dir, DESCRIPTOR_FILE) if dataset_dir else None
    if path and os.path.isfile(path):
        return read_descriptor_file(path)
    if name is None:
        raise ValueError(f"no {DESCRIPTOR_FILE} in {dataset_dir!r} and no dataset name given")
    return get_descriptor(name)
