"""`python export_model.py` from a checkout: the same program as `deeplab-export`
(flags and main in deeplab/cli/export_model.py)."""

from deeplab.cli.export_model import run

if __name__ == "__main__":
    run()
