"""A user's mistake found inside a DataLoader worker, kept as one line.

The DataLoader re-raises a worker's exception with the worker's traceback folded into the
message; passed back as a value instead, an ``InputError`` (a file that cannot be read,
named in the message) reaches the main process as it was raised. test.py's clip loader and
training's loaders both use this.
"""

from __future__ import annotations

from torch.utils.data import Dataset, default_collate

from util.errors import InputError


class ErrorsAsValues(Dataset):
    """Returns an item's ``InputError`` (a file that cannot be read, named in the message)
    instead of raising it in a DataLoader worker.

    The DataLoader re-raises worker errors with the worker's traceback folded into the
    message; passed back as a value, the error keeps its one-line message. Pair with
    :func:`collate_or_error`.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except InputError as err:
            return err


def collate_or_error(items: list) -> object:
    """``default_collate``, or the first ``InputError`` among the items."""
    for item in items:
        if isinstance(item, InputError):
            return item
    return default_collate(items)
