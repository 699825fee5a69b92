"""The model-zoo registry: the original DeepLab's 22 published checkpoints, read from
`model_zoo.json` (shipped in this package), plus any files named in $DEEPLAB_ZOO_REGISTRY
(os.pathsep-separated; their entries are added, or replace an entry of the same name).

Each entry names the tarball, what it was trained on and the `ModelOptions` fields it was
trained with; `entry.model_options()` builds them, and `unavailable_reason(entry)` says why
this checkout cannot build the network yet (None when it can), decided at run time so an
entry becomes usable as soon as its architecture lands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import urllib.parse

from deeplab.utils.registry import Registry

REGISTRY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_zoo.json")
REGISTRY_ENV = "DEEPLAB_ZOO_REGISTRY"


class ZooError(ValueError):
    """A user-facing model-zoo problem; the message names the entry, file or URL and the fix."""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint.

    name: as model_zoo.md spells it. url: the tarball's address. size_mb: published size
    (MB), or None. size: exact size in bytes when known (else size_mb is checked loosely).
    kind: "segmentation" (a whole DeepLab) or "backbone" (ImageNet/COCO backbone only).
    dataset / num_classes / ignore_label: what it segments (None for backbones).
    model: ModelOptions fields at `model["output_stride"]`. published: the published
    evaluations, each {metric, value (%), split, output_stride, scales, flip, crop_size}.
    frozen_graph: {output_stride, crop_size, documented} of frozen_inference_graph.pb, or
    None when the tarball holds none. requires: the issue a missing network depends on.
    dense_prediction_cell_json: the Dense Prediction Cell file, packaged name or path.
    """

    name: str
    url: str
    kind: str = "segmentation"
    size_mb: float | None = None
    size: int | None = None
    backbone: str = ""
    pretrained: str = ""
    dataset: str | None = None
    num_classes: int | None = None
    ignore_label: int | None = None
    model: dict = dataclasses.field(default_factory=dict)
    published: tuple = ()
    frozen_graph: dict | None = None
    requires: str | None = None
    dense_prediction_cell_json: str | None = None

    @property
    def file_name(self) -> str:
        """The tarball's original file name (the last path component of its URL)."""
        return posixpath.basename(urllib.parse.urlparse(self.url).path)

    @property
    def output_stride(self) -> int:
        return int(self.model.get("output_stride", 16))

    def model_fields(self, output_stride: int | None = None) -> dict:
        """ModelOptions fields, at `output_stride` (atrous rates rescaled) if given."""
        fields = dict(self.model)
        if self.num_classes:
            fields["num_classes"] = self.num_classes
        if output_stride and output_stride != self.output_stride:
            if fields.get("atrous_rates"):
                factor = self.output_stride / output_stride
                fields["atrous_rates"] = [int(round(r * factor)) for r in fields["atrous_rates"]]
            fields["output_stride"] = output_stride
        if self.dense_prediction_cell_json:
            from deeplab.model.dense_prediction_cell import load_config  # issue 10

            fields["dense_prediction_cell_config"] = load_config(self.dense_prediction_cell_json)
        return fields

    def model_options(self, output_stride: int | None = None, **overrides):
        """The ModelOptions of this checkpoint; ZooError naming the reason if unbuildable."""
        from deeplab.model.options import ModelOptions

        reason = unavailable_reason(self)
        if reason:
            raise ZooError(f"{self.name}: {reason}")
        return ModelOptions.from_dict({**self.model_fields(output_stride), **overrides})

    def summary(self) -> str:
        """The first published figure, e.g. '82.20 % val (OS16, 1 scale)', or ''."""
        if not self.published:
            return ""
        p = self.published[0]
        scales = len(p["scales"])
        return (f"{p['value']:.2f} % {p['split']} (OS{p['output_stride']}, {scales} scale"
                f"{'s' if scales > 1 else ''}{', flip' if p['flip'] else ''})")


def unavailable_reason(entry: ZooEntry) -> str | None:
    """Why this checkout cannot build `entry`'s network (None when it can).

    Tries the real thing (the DPC loader, then ModelOptions), so entries that depend on an
    architecture still being built light up by themselves once it exists.
    """
    from deeplab.model.options import ModelOptions

    waiting = f"network not built yet ({entry.requires})" if entry.requires else "unsupported"
    try:
        ModelOptions.from_dict(entry.model_fields())
    except ImportError as exc:
        return f"{waiting}: {exc}"
    except (TypeError, ValueError) as exc:
        return f"{waiting}: {exc}"
    return None


def _read(path: str) -> list[ZooEntry]:
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)["entries"]
        known = {f.name for f in dataclasses.fields(ZooEntry)}
        entries = []
        for row in rows:
            unknown = sorted(set(row) - known)
            if unknown:
                raise ValueError(f"entry {row.get('name')!r} has unknown field(s) {unknown}")
            entries.append(ZooEntry(**{**row, "published": tuple(row.get("published", ()))}))
        return entries
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ZooError(f"{path}: not a model-zoo registry ({exc})") from None


def load_registry() -> Registry[ZooEntry]:
    """The entries by name: the packaged registry then $DEEPLAB_ZOO_REGISTRY files, in order
    (an entry of a later file replaces one of the same name, in its place)."""
    paths = [REGISTRY_FILE] + [p for p in os.environ.get(REGISTRY_ENV, "").split(os.pathsep)
                               if p]
    registry: Registry[ZooEntry] = Registry("model-zoo entry", ZooError)
    for path in paths:
        for entry in _read(path):
            registry.register(entry.name, entry, replace=True)
    return registry


def get_entry(name: str) -> ZooEntry:
    """The entry called `name`; ZooError listing the names when there is none."""
    registry = load_registry()
    if name not in registry:
        raise ZooError(f"{name!r} is not in the model zoo; names: {', '.join(registry)} "
                       "(python -m deeplab.zoo list)")
    return registry[name]


def is_zoo_name(text: str | None) -> bool:
    """True when `text` is a registry name and not an existing file or directory."""
    return bool(text) and not os.path.exists(text) and text in load_registry()
