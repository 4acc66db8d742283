"""Registries: the one place each kind of name a user can type is written down.

A :class:`Registry` maps names (``ws``, ``group-ws``, ``classify``, ``zarr``, ``float16``) to an
:class:`Entry` holding what the name stands for, its help text and, for names that take an
argument (``group-ws:K``, ``layer:K``), the check of that argument. The CLI's choices and
``--help``, recipe validation and error messages are all read from the registries, so adding a
name is one entry.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from featcache.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes
    ----------
    name : str
    help : str
        One line for ``--help`` and error messages.
    value : object
        What the name stands for (a class path, a suffix, a hub id).
    arg : str or None
        Metavar of the ``name:ARG`` argument, or None when the name takes none.
    check : callable or None
        ``check(text) -> value`` parses the argument text; raises ConfigError when it is bad.
    """

    name: str
    help: str
    value: Any = None
    arg: str | None = None
    check: Callable[[str], Any] | None = None

    @property
    def spelling(self) -> str:
        """How a user writes it: ``ws`` or ``group-ws:K``."""
        return f"{self.name}:{self.arg}" if self.arg else self.name


class Registry:
    """Names of one kind, in registration order.

    Parameters
    ----------
    kind : str
        What the names are, for messages ("interface", "store format").
    option : str, optional
        The command-line option that takes them ("--interface"), for messages.
    """

    def __init__(self, kind: str, option: str | None = None):
        self.kind = kind
        self.option = option
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, help: str, value: Any = None, *, arg=None, check=None) -> Entry:
        """Add a name; registering one twice is a bug."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        entry = Entry(name, help, value, arg, check)
        self._entries[name] = entry
        return entry

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Entry:
        return self.get(name)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def spellings(self) -> list[str]:
        """Names as a user writes them (``group-ws:K``)."""
        return [e.spelling for e in self._entries.values()]

    def get(self, name: str) -> Entry:
        """The entry of ``name``; ConfigError naming the choices when there is none."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self._unknown(name)) from None

    def parse(self, text: str) -> tuple[Entry, Any]:
        """Split ``name[:arg]``, check the argument; returns (entry, checked argument or None)."""
        name, sep, arg = str(text).partition(":")
        entry = self.get(name.strip())
        where = f"{self.option or self.kind} {text!r}"
        if entry.arg is None:
            if sep:
                raise ConfigError(f"{where}: {entry.name} takes no argument; write {entry.name}")
            return entry, None
        if not arg.strip():
            raise ConfigError(f"{where}: write {entry.spelling} ({entry.help})")
        if entry.check is None:
            return entry, arg.strip()
        try:
            return entry, entry.check(arg.strip())
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def help_text(self) -> str:
        """``name: help`` for every entry, joined by "; " (for click help strings)."""
        return "; ".join(f"{e.spelling}: {e.help}" for e in self._entries.values())

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        where = f"{self.option} {name!r}" if self.option else f"{self.kind} {name!r}"
        return f"{where}: unknown {self.kind}{hint}; use one of {', '.join(self.spellings())}"


def positive_int(text: str) -> int:
    """Argument check: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{value} must be at least 1")
    return value
