"""`python predict.py` from a checkout: the same program as `deeplab-predict`
(flags and main in deeplab/cli/predict.py)."""

from deeplab.cli import launch

if __name__ == "__main__":
    launch("predict")
