"""Interfaces by name: ``build_interface("hconv", [(13, 768)])``.

:data:`INTERFACES` is the only place interface names are written; ``featcache train --help``,
recipe validation and error messages read it. Each entry names the classes that build it (as
``"module:Class"`` strings, so reading the registry imports no torch):

- ``single``: ``Class(num_layers, hidden_size, **kwargs)`` for one model, and one per model
  (concatenated and projected, :class:`~featcache.fusion.multi.PerModelFusion`) for several;
- ``multi``: ``Class(shapes, align_dim)``, a fusion that needs all models at once;
- ``one_model``: ``Class(shapes, align_dim)`` used instead when there is one model.

The entry's argument check turns ``NAME:ARG`` into the keyword arguments; ``linear`` says the
interface is affine per frame (so ``train`` may use the pooled shortcut). A new interface is one
file with an :class:`~featcache.fusion.base.Interface` subclass plus one ``INTERFACES.register``
entry here (``tests/test_registries.py`` shows it).

``layer:K`` means the model's layer index K (0 = the pre-transformer embedding output, as papers
count), whichever layers a store keeps; :func:`layer_position` is the one place it is resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featcache.errors import ConfigError
from featcache.registry import Registry, one_of, whole_number


@dataclass(frozen=True)
class InterfaceSpec:
    """How an interface name is built; see the module docstring."""

    single: str | None = None
    multi: str | None = None
    one_model: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    by_layer: bool = False  # kwargs["index"] is a model layer index, turned into a position
    # affine per frame (given the keyword arguments when a function): training may then run on
    # the stores' pooled means, an exact shortcut (featcache.train.pooled)
    linear: bool | Callable[[dict[str, Any]], bool] = False


INTERFACES = Registry("interface", "--interface")
INTERFACES.register(
    "last", "the last stored layer",
    InterfaceSpec(single="featcache.fusion.single:LayerSelect", kwargs={"index": -1},
                  linear=True),
)  # fmt: skip
INTERFACES.register(
    "layer", "the model's layer K (0 = embedding output)",
    InterfaceSpec(single="featcache.fusion.single:LayerSelect", by_layer=True, linear=True),
    arg="K", check=lambda a: {"index": whole_number(0)(a)},
)  # fmt: skip
INTERFACES.register(
    "ws", "softmax-weighted sum of layers (SUPERB); ws:ln layer-normalises each layer first",
    InterfaceSpec(single="featcache.fusion.ws:WeightedSum",
                  linear=lambda kw: not kw.get("layer_norm")), default=True,
    arg="ln", optional=True, check=lambda a: {"layer_norm": one_of("ln")(a) == "ln"},
)  # fmt: skip
INTERFACES.register(
    "hconv", "hierarchical conv over the layer axis; several models are summed first (HConv.)",
    InterfaceSpec(single="featcache.fusion.hconv:HConv", multi="featcache.fusion.multi:SumHConv"),
)  # fmt: skip
INTERFACES.register(
    "chconv", "models concatenated along features, projected, then HConv (CHConv.)",
    InterfaceSpec(multi="featcache.fusion.multi:ConcatHConv",
                  one_model="featcache.fusion.multi:SumHConv"),
)  # fmt: skip
INTERFACES.register(
    "cls", "one Transformer layer over the layer axis with a CLS token",
    InterfaceSpec(single="featcache.fusion.cls:ClsTransformer"),
)  # fmt: skip
INTERFACES.register(
    "concat", "layers concatenated, then a linear projection",
    InterfaceSpec(single="featcache.fusion.concat:ConcatProject", linear=True),
)  # fmt: skip
INTERFACES.register(
    "group-ws", "K weighted sums over contiguous layer groups, concatenated and projected",
    InterfaceSpec(single="featcache.fusion.group_ws:GroupWeightedSum", linear=True),
    arg="K", check=lambda a: {"groups": whole_number(1)(a)},
)  # fmt: skip
INTERFACES.register(
    "gumd", "per-dimension Gumbel-softmax layer selection; gumd:soft keeps soft weights in eval",
    InterfaceSpec(single="featcache.fusion.gumd:GumbelDimSelect"),
    arg="soft", optional=True,
    check=lambda a: {"eval_mode": "soft" if one_of("soft")(a) == "soft" else "argmax"},
)  # fmt: skip

ALIGN_DIMS = Registry("hidden-size alignment", "--align-dim")
ALIGN_DIMS.register(
    "interpolate", "interpolate hidden sizes to the largest (the paper)", default=True
)
ALIGN_DIMS.register("project", "a learned linear projection per model")


def parse_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"group-ws:3"`` -> ``("group-ws", {"groups": 3})``; ConfigError naming the choices."""
    entry, kwargs = INTERFACES.parse(name)
    return entry.name, {**entry.value.kwargs, **(kwargs or {})}


def is_linear(name: str) -> bool:
    """True when the interface ``name`` is affine per frame (its spec's ``linear`` flag)."""
    entry, _ = INTERFACES.parse(name)
    _, kwargs = parse_name(name)
    linear = entry.value.linear
    return bool(linear(kwargs) if callable(linear) else linear)


def layer_position(layer: int, stored: list[int], where: str = "the store") -> int:
    """Position of the model's layer ``layer`` in a store keeping model layers ``stored``."""
    if layer not in stored:
        raise ConfigError(
            f"interface layer:{layer}: layer {layer} is not stored in {where} (stored: "
            f"{list(stored)}); choose another layer or re-extract with it"
        )
    return list(stored).index(layer)


def selected_layers(name: str, layers: list[list[int]], where: list[str]) -> list[list[int]] | None:
    """For ``last``/``layer:K``, the one model layer of each store to read; else None.

    Parameters
    ----------
    name : str
        Interface name.
    layers : list of list of int
        The model layer indices each store keeps.
    where : list of str
        Each store's name, for messages.
    """
    base, kwargs = parse_name(name)
    if base == "last":
        return [[kept[-1]] for kept in layers]
    if base == "layer":
        k = kwargs["index"]
        return [[kept[layer_position(k, kept, w)]] for kept, w in zip(layers, where, strict=True)]
    return None


def check_fits(name: str, shapes: list[tuple[int, int]]) -> None:
    """The one-line ConfigError of an argument the shapes cannot take, without importing torch."""
    entry, arg_kwargs = INTERFACES.parse(name)
    _check_fits(entry.name, {**entry.value.kwargs, **(arg_kwargs or {})}, shapes)


def build_interface(
    name: str,
    shapes: list[tuple[int, int]],
    align_dim: str = "interpolate",
    layers: list[list[int]] | None = None,
):
    """Build the interface ``name`` for models of the given ``(num_layers, hidden_size)``.

    Parameters
    ----------
    name
        Interface name, e.g. ``"ws"``, ``"layer:6"``, ``"group-ws:3"``, ``"chconv"``.
    shapes
        ``(num_layers, hidden_size)`` of each upstream, in the order of the forward inputs.
    align_dim
        Multi-model hidden-size alignment: ``"interpolate"`` (paper) or ``"project"``.
    layers
        The model layer index of each position of each model's layer axis (default
        ``0..L-1``); ``layer:K`` picks the position holding model layer K.

    Returns
    -------
    Interface
        A module mapping ``list[(L_i, B, T_i, D_i)]`` to ``(B, T, output_dim)``.
    """
    entry, arg_kwargs = INTERFACES.parse(name)
    ALIGN_DIMS.get(align_dim)
    spec: InterfaceSpec = entry.value
    kwargs = {**spec.kwargs, **(arg_kwargs or {})}
    shapes = [(int(n), int(d)) for n, d in shapes]
    layers = [list(range(n)) for n, _ in shapes] if layers is None else layers
    _check_fits(entry.name, kwargs, shapes)
    if len(shapes) == 1 and spec.one_model:
        return entry_class(spec.one_model)(shapes, align_dim)
    if len(shapes) == 1 and spec.single:
        return _single(spec, kwargs, shapes[0], layers[0])
    if spec.multi:
        return entry_class(spec.multi)(shapes, align_dim)
    from featcache.fusion.multi import PerModelFusion

    per_model = iter(layers)
    return PerModelFusion(shapes, lambda n, d: _single(spec, kwargs, (n, d), next(per_model)))


def entry_class(path: str):
    """The class a ``"module:Class"`` string names."""
    import importlib

    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def _single(spec: InterfaceSpec, kwargs: dict, shape: tuple[int, int], layers: list[int]):
    if spec.by_layer:
        kwargs = {**kwargs, "index": layer_position(kwargs["index"], layers)}
    return entry_class(spec.single)(*shape, **kwargs)


def _check_fits(name: str, kwargs: dict, shapes: list[tuple[int, int]]) -> None:
    """One-line errors for arguments the models' layer counts cannot take."""
    groups = kwargs.get("groups")
    fewest = min(n for n, _ in shapes)
    if groups is not None and groups > fewest:
        raise ConfigError(
            f"--interface {name}:{groups}: needs at least {groups} layers but an upstream has "
            f"{fewest}; use {name}:K with K <= {fewest}"
        )
