"""Fusion interfaces: per-model hidden states ``list[(L_i, B, T_i, D_i)]`` -> ``(B, T, D_out)``.

See DESIGN.md, "Fusion interfaces", for the exact definitions; :func:`build_interface` builds one
by name, :data:`INTERFACES` lists the names. Importing this package imports no torch.
"""

from featcache.fusion.registry import (
    ALIGN_DIMS,
    INTERFACES,
    build_interface,
    parse_name,
    selected_layers,
)

__all__ = ["ALIGN_DIMS", "INTERFACES", "Interface", "build_interface", "parse_name",
           "selected_layers"]  # fmt: skip


def __getattr__(name):
    if name == "Interface":
        from featcache.fusion.base import Interface

        return Interface
    raise AttributeError(f"module 'featcache.fusion' has no attribute {name!r}")
