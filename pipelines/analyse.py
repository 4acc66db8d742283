"""The analysis stages, one file each: probe, similarity, selection, report.

Each ``run_*`` reads a cache folder, computes, writes its outputs to ``out`` (its "done" marker
last) and returns a typed result; the CLI commands (``featcache probe|similarity|select|report``)
only parse options and print. This module gathers them under their historical import path.
"""

from featcache.pipelines.probe import ProbeResult, run_probe
from featcache.pipelines.report import run_report
from featcache.pipelines.selection import SelectionResult, run_select, validate_ranking
from featcache.pipelines.similarity import SimilarityResult, load_similarity, run_similarity

__all__ = ["ProbeResult", "SelectionResult", "SimilarityResult", "load_similarity", "run_probe",
           "run_report", "run_select", "run_similarity", "validate_ranking"]  # fmt: skip
