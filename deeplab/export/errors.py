"""The one error type of the export package."""

from __future__ import annotations


class ExportError(ValueError):
    """An export or an exported model that cannot be written, read or trusted.

    The message names the file and what is wrong; entry points print it without a traceback.
    """
