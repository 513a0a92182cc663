"""Errors raised by the data loaders and downloaders."""
from __future__ import annotations


class DataFormatError(ValueError):
    """A data file is missing fields, has the wrong shapes, or is not the expected format.

    The message names the file and what is wrong with it.
    """


class ChecksumError(DataFormatError):
    """A downloaded file's hash does not match the pinned one (or no hash is known to check)."""
