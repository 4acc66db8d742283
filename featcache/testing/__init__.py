"""Builders for tests and offline demos: tiny corpora, tiny random-initialised upstreams, caches.

- :mod:`featcache.testing.corpus`: audio corpora made on the spot (tones or espeak-ng speech).
- :mod:`featcache.testing.models`: tiny random-initialised configs of each upstream family.
- :mod:`featcache.testing.caches`: contract-conforming layer stores written from given arrays.
"""
