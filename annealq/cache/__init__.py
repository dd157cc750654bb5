"""The cache of solved problems, split by concern: :mod:`~annealq.cache.keys` (hashing and
keys), :mod:`~annealq.cache.store` (the SQLite store) and
:mod:`~annealq.cache.composite` (the caching composite the pipeline solves through)."""

from annealq.cache.composite import CachedSampler
from annealq.cache.keys import HASH_BITS, bqm_hash, cache_key, layer_hashes
from annealq.cache.store import CacheStore, default_cache_path, open_cache

__all__ = [
    "CacheStore",
    "CachedSampler",
    "HASH_BITS",
    "bqm_hash",
    "cache_key",
    "default_cache_path",
    "layer_hashes",
    "open_cache",
]
