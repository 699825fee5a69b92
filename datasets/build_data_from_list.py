"""Old path of `python -m deeplab.datasets.build_data_from_list`, kept for existing scripts."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from deeplab.cli import forward  # noqa: E402

forward(__name__, "deeplab.datasets.build_data_from_list")
