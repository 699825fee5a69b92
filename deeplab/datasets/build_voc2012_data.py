"""Converts PASCAL VOC 2012 (and the SBD augmented set) to TFRecord shards.

Reads VOC's own layout under --voc_root (VOCdevkit/VOC2012 or the folder holding it):
  JPEGImages/<id>.jpg, SegmentationClass/<id>.png (palette PNGs: the palette index is the
  class, 255 the boundary), ImageSets/Segmentation/{train,val,trainval}.txt.
With --sbd_root (benchmark_RELEASE or its dataset/ folder: cls/<id>.mat, train.txt,
val.txt) it also writes `train_aug` = SBD train + SBD val + VOC train - VOC val (10,582
images on the real data). A train_aug image takes its VOC SegmentationClass label when VOC
has one, else the SBD class map (GTcls.Segmentation); its image comes from JPEGImages, or
SBD's img/ folder if missing there.

Usage:
  python -m deeplab.datasets.build_voc2012_data --voc_root=VOCdevkit/VOC2012 \\
      --sbd_root=benchmark_RELEASE --output_dir=tfrecord
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import scipy.io

from deeplab.data import descriptors
from deeplab.datasets import build_data

VOC_SPLITS = ("train", "val", "trainval")
DESCRIPTOR = descriptors.get_descriptor("pascal_voc_seg")


@dataclasses.dataclass(frozen=True)
class VocItem:
    name: str
    image: str
    label: str  # a .png (VOC) or .mat (SBD) path


def find_voc_dir(voc_root: str) -> str:
    """The folder holding JPEGImages/ (voc_root, voc_root/VOC2012 or .../VOCdevkit/VOC2012)."""
    return build_data.find_folder(voc_root, ("VOC2012", os.path.join("VOCdevkit", "VOC2012")),
                                  "JPEGImages", "the VOC2012 folder of VOCdevkit")


def find_sbd_dir(sbd_root: str) -> str:
    """The SBD folder holding cls/ (sbd_root or sbd_root/dataset)."""
    return build_data.find_folder(sbd_root, ("dataset",), "cls",
                                  "SBD's benchmark_RELEASE or its dataset/ folder")


def read_sbd_label(path: str) -> np.ndarray:
    """The class map of an SBD cls/*.mat file (GTcls.Segmentation) as uint8 [H, W]."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        label = np.asarray(mat["GTcls"].Segmentation)
    except FileNotFoundError:
        raise build_data.InvalidPairError(path, "file not found") from None
    except Exception as err:  # scipy raises several types for bad files
        raise build_data.InvalidPairError(path, f"cannot read SBD GTcls.Segmentation ({err})"
                                          ) from None
    if label.ndim != 2 or label.min() < 0 or label.max() > 255:
        raise build_data.InvalidPairError(path, f"GTcls.Segmentation is not a 2-D 8-bit class "
                                          f"map (shape {label.shape})")
    return label.astype(np.uint8)


def _voc_item(voc_dir: str, name: str) -> VocItem:
    return VocItem(name, os.path.join(voc_dir, "JPEGImages", name + ".jpg"),
                   os.path.join(voc_dir, "SegmentationClass", name + ".png"))


def voc_split_items(voc_dir: str, split: str) -> list[VocItem]:
    """Items of ImageSets/Segmentation/<split>.txt, in file order."""
    path = os.path.join(voc_dir, "ImageSets", "Segmentation", split + ".txt")
    return [_voc_item(voc_dir, name) for name in build_data.read_split_file(path)]


def train_aug_items(voc_dir: str, sbd_dir: str) -> list[VocItem]:
    """SBD train + SBD val + VOC train - VOC val, sorted by image id."""
    sbd = set(build_data.read_split_file(os.path.join(sbd_dir, "train.txt")))
    sbd |= set(build_data.read_split_file(os.path.join(sbd_dir, "val.txt")))
    voc_train = {item.name for item in voc_split_items(voc_dir, "train")}
    voc_val = {item.name for item in voc_split_items(voc_dir, "val")}
    items = []
    for name in sorted((sbd | voc_train) - voc_val):
        item = _voc_item(voc_dir, name)
        if not os.path.isfile(item.label):
            item = dataclasses.replace(item, label=os.path.join(sbd_dir, "cls", name + ".mat"))
        if not os.path.isfile(item.image):
            sbd_image = os.path.join(sbd_dir, "img", name + ".jpg")
            item = dataclasses.replace(item, image=sbd_image if os.path.isfile(sbd_image)
                                       else item.image)
        items.append(item)
    return items


def _load(item: VocItem) -> build_data.EncodedPair:
    if item.label.endswith(".mat"):
        label = read_sbd_label(item.label)
    else:
        label = build_data.read_label_image(item.label)
    return build_data.make_pair(item.name, item.image, label, DESCRIPTOR.num_classes,
                                DESCRIPTOR.ignore_label, label_path=item.label)


def convert_voc(
    voc_root: str,
    output_dir: str,
    sbd_root: str | None = None,
    splits: Sequence[str] = VOC_SPLITS,
    num_shards: int = 4,
    num_workers: int | None = None,
    skip_invalid: bool = False,
) -> dict[str, build_data.SplitResult]:
    """Writes the VOC splits (and train_aug with sbd_root); returns results by split."""
    build_data.check_output_options(output_dir, num_shards)
    voc_dir = find_voc_dir(voc_root)
    plans = {split: voc_split_items(voc_dir, split) for split in splits}
    if sbd_root:
        plans["train_aug"] = train_aug_items(voc_dir, find_sbd_dir(sbd_root))
    return build_data.write_splits(output_dir, plans.items(), _load, DESCRIPTOR, num_shards,
                                   num_workers, skip_invalid)


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    build_data.run_main(lambda: convert_voc(f.voc_root, f.output_dir, f.sbd_root,
                                            tuple(f.splits), f.num_shards, f.num_workers,
                                            f.skip_invalid))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("voc_root", None, "VOCdevkit/VOC2012 folder.", required=True)
    flags.DEFINE_string("sbd_root", None, "SBD benchmark_RELEASE folder; adds train_aug.")
    flags.DEFINE_list("splits", list(VOC_SPLITS), "VOC splits to convert.")
    for name in build_data.define_common_flags(num_shards=4):
        flags.declare_key_flag(name)
    app.run(main)
