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
        ``check(text_or_None) -> value`` parses the argument; raises ConfigError when it is bad.
    optional : bool
        The argument may be left out (``ws`` and ``ws:ln``); ``check`` then receives None.
    """

    name: str
    help: str
    value: Any = None
    arg: str | None = None
    check: Callable[[str | None], Any] | None = None
    optional: bool = False

    @property
    def spelling(self) -> str:
        """How a user writes it: ``hconv``, ``group-ws:K`` or ``ws[:ln]``."""
        if not self.arg:
            return self.name
        return f"{self.name}[:{self.arg}]" if self.optional else f"{self.name}:{self.arg}"

    def load(self) -> Any:
        """Import the ``"module:attribute"`` this entry's value names."""
        import importlib

        module, attr = str(self.value).split(":")
        return getattr(importlib.import_module(module), attr)


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
        self.default: str | None = None  # the name registered with default=True
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, help: str, value: Any = None, *, arg=None, check=None, optional=False,
        default=False,
    ) -> Entry:  # fmt: skip
        """Add a name; registering one twice is a bug. See :class:`Entry` for the fields.

        ``default`` makes it the registry's default (what an option means when not given).
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        entry = Entry(name, help, value, arg, check, optional)
        self._entries[name] = entry
        if default:
            self.default = name
        return entry

    def remove(self, name: str) -> Entry:
        """Take a name out again (a plug-in's or a test's entry)."""
        return self._entries.pop(name)

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
        arg = arg.strip() or None
        if entry.arg is None and sep:
            raise ConfigError(f"{where}: {entry.name} takes no argument; write {entry.name}")
        if entry.arg is not None and arg is None and not entry.optional:
            raise ConfigError(f"{where}: write {entry.spelling} ({entry.help})")
        if entry.check is None:
            return entry, arg
        try:
            return entry, entry.check(arg)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}; write {entry.spelling} ({entry.help})") from None

    def help_text(self) -> str:
        """``name: help`` for every entry, joined by "; " (for click help strings)."""
        return "; ".join(f"{e.spelling}: {e.help}" for e in self._entries.values())

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        where = f"{self.option} {name!r}" if self.option else f"{self.kind} {name!r}"
        return f"{where}: unknown {self.kind}{hint}; use one of {', '.join(self.spellings())}"


def whole_number(minimum: int) -> Callable[[str | None], int]:
    """Argument check: a whole number of at least ``minimum``."""

    def check(text: str | None) -> int:
        try:
            value = int(str(text))
        except ValueError:
            raise ConfigError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{value} is below {minimum}")
        return value

    return check


def one_of(*words: str) -> Callable[[str | None], str | None]:
    """Argument check for an optional word argument (``ws:ln``): None or one of ``words``."""

    def check(text: str | None) -> str | None:
        if text is not None and text not in words:
            raise ConfigError(f"{text!r} is not {' or '.join(map(repr, words))}")
        return text

    return check
