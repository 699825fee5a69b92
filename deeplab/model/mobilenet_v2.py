"""Placeholder until the backbone lands."""


def build(images, options):
    raise NotImplementedError(options.model_variant)
