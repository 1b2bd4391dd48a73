"""Dataset readers (one module per published layout) behind a registry, and the one way from a
dataset name to its faces.

``read_dataset(name, root)`` returns a reader's records (:mod:`elim.datasets.registry`);
``open_dataset(name, root, image_size)`` turns them into a cached :class:`elim.data.cache.FaceCache`
(:mod:`elim.datasets.faces`). ``elim train --dataset NAME --root PATH`` goes through both.
"""

from elim.datasets.faces import default_cache_root, open_dataset
from elim.datasets.registry import get_reader, list_datasets, read_dataset, register_dataset

__all__ = [
    "default_cache_root",
    "get_reader",
    "list_datasets",
    "open_dataset",
    "read_dataset",
    "register_dataset",
]
