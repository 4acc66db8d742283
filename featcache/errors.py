"""Errors a user can cause.

Every class subclasses :class:`FeatcacheError` and the builtin that fits it (as zarr's errors
do), so ``except FileNotFoundError`` or ``except ValueError`` keeps working around featcache. Messages say what went wrong, where (file, line, utterance id)
and what to do; the CLI prints them on one line and exits non-zero, without a traceback. Bugs raise
ordinary exceptions.
"""

from __future__ import annotations


class FeatcacheError(Exception):
    """Base of all user-caused featcache errors."""


class ManifestError(FeatcacheError, ValueError):
    """A manifest cannot be read: bad JSON, missing fields, duplicate ids, bad values."""


class AudioError(FeatcacheError, ValueError):
    """An audio file is missing, unreadable, empty, truncated or has an unusable segment."""


class UpstreamError(FeatcacheError, LookupError):
    """An upstream model is unknown, cannot be reached, or its weights do not load completely."""


class StoreError(FeatcacheError, ValueError):
    """A layer cache is missing, incomplete or incompatible with the request."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No store exists at the given path or for the given upstream."""


class ConfigError(FeatcacheError, ValueError):
    """A command-line option, config file or recipe value is invalid."""


class DependencyError(FeatcacheError, RuntimeError):
    """A system tool featcache needs (espeak-ng, chromium, ...) is not installed or fails."""


class CheckpointError(FeatcacheError, ValueError):
    """A checkpoint file is damaged, or holds objects other than tensors and plain values."""


class DiskFullError(FeatcacheError, OSError):
    """A write ran out of disk space (or quota); what it wrote was removed."""


class LockedError(FeatcacheError, RuntimeError):
    """Another process holds the lock of the cache folder this command would write."""
