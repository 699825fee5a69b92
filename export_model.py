"""`python export_model.py` from a checkout: the same program as `deeplab-export`
(flags and main in deeplab/cli/export_model.py)."""

from deeplab.cli import launch

if __name__ == "__main__":
    launch("export_model")
