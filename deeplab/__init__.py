"""DeepLab for TensorFlow 2. `deeplab.load(name_or_path)` is the Python API (deeplab.api)."""


def load(source, **kwargs):
    """A deeplab.api.Segmenter for a model-zoo name, a checkpoint or an exported model."""
    from deeplab.api import load as _load

    return _load(source, **kwargs)
