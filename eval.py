"""`python eval.py` from a checkout: the same program as `deeplab-eval`
(flags and main in deeplab/cli/eval.py)."""

from deeplab.cli.eval import run

if __name__ == "__main__":
    run()
