"""Data layer: readers, preprocessing, tf.data pipelines and built-in offline datasets.

TensorFlow is imported lazily (only by the tf.data and TFRecord functions), so simulation
worker processes and ``astrovader data info`` start quickly.
"""

from astrovader.data.builtin import builtin_names, cache_root, generate_builtin, load_builtin
from astrovader.data.pipeline import iter_batches, load, make_dataset
from astrovader.data.preprocessing import preprocess
from astrovader.data.shards import write_shards
from astrovader.data.stampset import StampSet, info

__all__ = [
    "StampSet",
    "load",
    "make_dataset",
    "iter_batches",
    "builtin_names",
    "preprocess",
    "write_shards",
    "info",
    "load_builtin",
    "generate_builtin",
    "cache_root",
]
