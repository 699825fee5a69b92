"""`python eval.py` from a checkout: the same program as `deeplab-eval`
(flags and main in deeplab/cli/eval.py)."""

from deeplab.cli import launch

if __name__ == "__main__":
    launch("eval")
