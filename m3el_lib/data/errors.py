"""The error a dataset file or record that cannot be used raises (its message names file and record)."""
from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file or record that cannot be used; the message names the file and record."""
