"""`python vis.py` from a checkout: the same program as `deeplab-vis`
(flags and main in deeplab/cli/vis.py)."""

from deeplab.cli import launch

if __name__ == "__main__":
    launch("vis")
