"""The original DeepLab's model zoo: registry, verified downloads and cache.

    python -m deeplab.zoo list | download NAME | verify NAME

See registry.py (model_zoo.json), cache.py (download, cache layout) and verify.py (parity
with the frozen graph each tarball holds).
"""

from deeplab.zoo.registry import ZooEntry, ZooError, get_entry, is_zoo_name, load_registry

__all__ = ["ZooEntry", "ZooError", "get_entry", "is_zoo_name", "load_registry"]
