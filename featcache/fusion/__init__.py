"""Fusion interfaces: per-model hidden states ``list[(L_i, B, T_i, D_i)]`` -> ``(B, T, D_out)``.

See DESIGN.md, "Fusion interfaces", for the exact definitions; :func:`build_interface` builds one
by name.
"""

from featcache.fusion.base import Interface
from featcache.fusion.registry import NAMES, build_interface, parse_name

__all__ = ["NAMES", "Interface", "build_interface", "parse_name"]
