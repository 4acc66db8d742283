"""Interfaces by name: ``build_interface("hconv", [(13, 768)])``.

Names (``NAME[:ARG]``): ``last``, ``layer:K``, ``ws``, ``ws:ln``, ``hconv``, ``chconv``, ``cls``,
``concat``, ``group-ws:K``, ``gumd``, ``gumd:soft``. With one model each builds its single-model
interface; with several, ``hconv`` and ``chconv`` are the paper's fusions and every other name
becomes a per-model interface followed by concatenation and projection (``ws``, ``gumd``: the
paper's baselines). A new interface is a file with an :class:`Interface` subclass plus one entry in
``SINGLE`` (or a ``MULTI`` entry for a fusion that needs all models at once).
"""

from __future__ import annotations

from collections.abc import Callable

from featcache.errors import ConfigError
from featcache.fusion.base import Interface
from featcache.fusion.cls import ClsTransformer
from featcache.fusion.concat import ConcatProject
from featcache.fusion.group_ws import GroupWeightedSum
from featcache.fusion.gumd import GumbelDimSelect
from featcache.fusion.hconv import HConv
from featcache.fusion.multi import ConcatHConv, PerModelFusion, SumHConv
from featcache.fusion.single import LayerSelect
from featcache.fusion.ws import WeightedSum

# name -> (num_layers, hidden_size, arg) -> single-model interface
SINGLE: dict[str, Callable[[int, int, str | None], Interface]] = {
    "last": lambda n, d, arg: LayerSelect(n, d, -1),
    "layer": lambda n, d, arg: LayerSelect(n, d, int(arg)),
    "ws": lambda n, d, arg: WeightedSum(n, d, layer_norm=arg == "ln"),
    "hconv": lambda n, d, arg: HConv(n, d),
    "cls": lambda n, d, arg: ClsTransformer(n, d),
    "concat": lambda n, d, arg: ConcatProject(n, d),
    "group-ws": lambda n, d, arg: GroupWeightedSum(n, d, int(arg)),
    "gumd": lambda n, d, arg: GumbelDimSelect(n, d, "soft" if arg == "soft" else "argmax"),
}

# name -> (shapes, align_dim) -> multi-model interface; other names fall back to PerModelFusion
MULTI: dict[str, Callable[[list[tuple[int, int]], str], Interface]] = {
    "hconv": lambda shapes, align_dim: SumHConv(shapes, align_dim),
    "chconv": lambda shapes, align_dim: ConcatHConv(shapes, align_dim),
}

# which ARG values a name accepts (None: no argument)
_ARGS: dict[str, Callable[[str | None], bool]] = {
    "last": lambda a: a is None,
    "layer": lambda a: a is not None and a.lstrip("-").isdigit(),
    "ws": lambda a: a in (None, "ln"),
    "hconv": lambda a: a is None,
    "chconv": lambda a: a is None,
    "cls": lambda a: a is None,
    "concat": lambda a: a is None,
    "group-ws": lambda a: a is not None and a.isdigit() and int(a) >= 1,
    "gumd": lambda a: a in (None, "soft"),
}

NAMES = ["last", "layer:K", "ws", "ws:ln", "hconv", "chconv", "cls", "concat", "group-ws:K",
         "gumd", "gumd:soft"]  # fmt: skip


def parse_name(name: str) -> tuple[str, str | None]:
    """Split ``"group-ws:3"`` into ``("group-ws", "3")``; raise ConfigError if unknown."""
    base, _, arg = name.partition(":")
    arg = arg or None
    check = _ARGS.get(base)
    if check is None or not check(arg):
        raise ConfigError(f"unknown or malformed interface {name!r}; use one of {', '.join(NAMES)}")
    return base, arg


def build_interface(
    name: str, shapes: list[tuple[int, int]], align_dim: str = "interpolate"
) -> Interface:
    """Build the interface ``name`` for models of the given ``(num_layers, hidden_size)``.

    Parameters
    ----------
    name
        Interface name, e.g. ``"ws"``, ``"layer:6"``, ``"group-ws:3"``, ``"chconv"``.
    shapes
        ``(num_layers, hidden_size)`` of each upstream, in the order of the forward inputs.
    align_dim
        Multi-model hidden-size alignment: ``"interpolate"`` (paper) or ``"project"``.

    Returns
    -------
    Interface
        A module mapping ``list[(L_i, B, T_i, D_i)]`` to ``(B, T, output_dim)``.
    """
    base, arg = parse_name(name)
    if align_dim not in ("interpolate", "project"):
        raise ConfigError(f"--align-dim must be 'interpolate' or 'project', not {align_dim!r}")
    shapes = [(int(n), int(d)) for n, d in shapes]
    if len(shapes) == 1:
        if base == "chconv":
            return SumHConv(shapes, align_dim)  # one model: plain HConv
        return SINGLE[base](*shapes[0], arg)
    if base in MULTI:
        return MULTI[base](shapes, align_dim)
    return PerModelFusion(shapes, lambda n, d: SINGLE[base](n, d, arg))
