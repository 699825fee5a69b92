"""`python train.py` from a checkout: the same program as `deeplab-train`
(flags and main in deeplab/cli/train.py)."""

from deeplab.cli import launch

if __name__ == "__main__":
    launch("train")
