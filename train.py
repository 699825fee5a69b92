"""`python train.py` from a checkout: the same program as `deeplab-train`
(flags and main in deeplab/cli/train.py)."""

from deeplab.cli.train import run

if __name__ == "__main__":
    run()
