"""What a loader raises when its data is not there."""

from __future__ import annotations


class DatasetUnavailable(Exception):
    """A file-backed dataset is missing and could not be fetched, or it has other sizes than
    its registration promises."""
