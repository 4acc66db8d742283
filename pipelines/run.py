"""Execute a recipe stage by stage, skipping what is already done.

Stages and where they write (under the recipe's ``out`` folder):

==========  ==============================  ===============================================
stage       output                          done marker (written last, atomically)
==========  ==============================  ===============================================
data        corpus/ or manifest.jsonl       the manifest
extract     cache/<upstream>.zarr           the store's attrs: complete, this manifest's sha
train       runs/<name>/                    runs/<name>/summary.json
probe       analysis/probe/                 probe.json
similarity  analysis/similarity/            similarity.json
select      analysis/select/                selection.json
report      report.html                     none: always rewritten (cheap)
==========  ==============================  ===============================================

Every stage writes its marker after all its other outputs, and :func:`plan` checks exactly that
marker, so interrupting a recipe at any moment and running it again continues where it stopped:
each stage either is complete, or resumes from its own checkpoints (extraction parts, training
checkpoints) or starts over (analyses). The dry run (``--dry-run``) is
:func:`featcache.pipelines.run_check.check`. ``tests/test_run_kill.py`` kills ``featcache run``
between every pair of outputs and checks that the rerun completes with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from featcache.analysis.text import format_results, results_rows
from featcache.atomic import read_json, write_atomic, write_json
from featcache.errors import ConfigError
from featcache.pipelines.recipe import Recipe
from featcache.pipelines.train import DONE as TRAIN_DONE

Log = Callable[[str], None]


@dataclass
class StageStatus:
    stage: str
    target: str
    done: bool
    detail: str = ""


@dataclass
class RecipeResult:
    recipe: Recipe
    stages: list[StageStatus] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    report: Path | None = None
    failed_utterances: int = 0


# --- paths -------------------------------------------------------------------------------------
def manifest_path(recipe: Recipe) -> Path:
    if recipe.data.kind == "demo":
        return recipe.out / "corpus" / "manifest.jsonl"
    if recipe.data.kind == "import":
        return recipe.out / "manifest.jsonl"
    return recipe.data.manifest


def cache_dir(recipe: Recipe):
    """``out/cache``, or the folder or URL given with ``featcache run --cache``."""
    return recipe.out / "cache" if recipe.cache is None else recipe.cache


def run_dir(recipe: Recipe, name: str) -> Path:
    return recipe.out / "runs" / name


def analysis_dir(recipe: Recipe, what: str) -> Path:
    return recipe.out / "analysis" / what


# --- planning ----------------------------------------------------------------------------------
def plan(recipe: Recipe) -> list[StageStatus]:
    """What each stage would do now: done (its marker exists) or to do, without doing anything."""
    from featcache.pipelines import probe, selection, similarity

    a = recipe.analyse
    stages = [StageStatus("data", str(manifest_path(recipe)), manifest_path(recipe).exists())]
    stages += [
        StageStatus("extract", f"{cache_dir(recipe)} [{u}]", _extract_done(recipe, u))
        for u in recipe.extract.upstreams
    ]
    stages += [
        StageStatus("train", str(run_dir(recipe, r.name)),
                    (run_dir(recipe, r.name) / TRAIN_DONE).exists())
        for r in recipe.runs
    ]  # fmt: skip
    analyses = [("probe", probe.DONE, bool(a.label and a.probe)),
                ("similarity", similarity.DONE, a.similarity),
                ("select", selection.DONE,
                 bool(a.label and a.select and len(recipe.extract.upstreams) > 1))]  # fmt: skip
    for name, marker, wanted in analyses:
        if wanted:
            p = analysis_dir(recipe, name)
            stages.append(StageStatus(name, str(p), (p / marker).exists()))
    if a.report:
        stages.append(StageStatus("report", str(recipe.out / "report.html"), False))
    return stages


def _extract_done(recipe: Recipe, upstream: str) -> bool:
    """Extract's marker: the store of ``upstream`` is complete for the recipe's manifest."""
    from featcache.manifest import Manifest
    from featcache.store import Cache

    manifest = manifest_path(recipe)
    if not manifest.exists():
        return False
    return Cache(cache_dir(recipe)).is_built(upstream, Manifest.load(manifest))


# --- running -----------------------------------------------------------------------------------
def run_recipe(recipe: Recipe, log: Log = print) -> RecipeResult:
    """Run every stage that is not done yet; return statuses, run summaries and the report path."""
    result = RecipeResult(recipe)
    recipe.out.mkdir(parents=True, exist_ok=True)
    if recipe.threads:
        import torch

        torch.set_num_threads(recipe.threads)
    statuses = {(s.stage, s.target): s for s in plan(recipe)}
    started = time.perf_counter()

    def stage(name: str, target: str, fn: Callable[[], str | None]) -> None:
        status = statuses.get((name, target), StageStatus(name, target, False))
        if status.done:
            log(f"[{name}] {target}: already done, skipped")
        else:
            t0 = time.perf_counter()
            log(f"[{name}] {target} ...")
            status.detail = fn() or ""
            status.done = True
            log(f"[{name}] done in {time.perf_counter() - t0:.1f} s {status.detail}".rstrip())
        result.stages.append(status)

    stage("data", str(manifest_path(recipe)), lambda: _make_data(recipe))
    for upstream in recipe.extract.upstreams:
        stage(
            "extract",
            f"{cache_dir(recipe)} [{upstream}]",
            lambda u=upstream: _extract(recipe, u, result),
        )
    for run in recipe.runs:
        stage("train", str(run_dir(recipe, run.name)), lambda r=run: _train(recipe, r, log))
        summary = run_dir(recipe, run.name) / TRAIN_DONE
        result.runs.append({"name": run.name, **read_json(summary)})
    a = recipe.analyse
    keys = {s.stage for s in statuses.values()}
    if "probe" in keys:
        stage("probe", str(analysis_dir(recipe, "probe")), lambda: _probe(recipe, log))
    if "similarity" in keys:
        stage(
            "similarity", str(analysis_dir(recipe, "similarity")), lambda: _similarity(recipe, log)
        )
    if "select" in keys:
        stage("select", str(analysis_dir(recipe, "select")), lambda: _select(recipe, log))
    if a.report:
        stage("report", str(recipe.out / "report.html"), lambda: _report(recipe, log))
        result.report = recipe.out / "report.html"
    write_results(recipe, result)
    log(f"recipe {recipe.name} finished in {time.perf_counter() - started:.1f} s")
    return result


def _make_data(recipe: Recipe) -> str:
    from featcache.manifest import Manifest

    d = recipe.data
    if d.kind == "demo":
        from featcache.demo_data import make_demo_corpus

        make_demo_corpus(recipe.out / "corpus", d.utterances, d.seed)
    elif d.kind == "import":
        from featcache.importers import import_manifest

        import_manifest(d.importer, d.source, manifest_path(recipe), **d.options)
    elif not d.manifest.exists():
        raise ConfigError(f"manifest {d.manifest} not found (recipe {recipe.path})")
    return f"({len(Manifest.load(manifest_path(recipe)))} utterances)"


def _extract(recipe: Recipe, upstream: str, result: RecipeResult) -> str:
    from featcache.pipelines.extract import ExtractConfig, extract

    e = recipe.extract
    config = ExtractConfig(
        manifest=manifest_path(recipe), upstreams=[upstream], cache=cache_dir(recipe),
        format=e.format, dtype=e.dtype, layers=e.layers, device=e.device,
        batch_seconds=e.batch_seconds, workers=e.workers, threads=recipe.threads,
    )  # fmt: skip
    done = extract(config)
    failed = sum(s.num_failed for s in done.stores)
    result.failed_utterances += failed
    return f"({failed} failed utterance(s))" if failed else ""


def _train(recipe: Recipe, run, log: Log) -> str:
    from featcache.pipelines.train import train
    from featcache.train.config import TrainConfig

    config = TrainConfig(
        cache=str(cache_dir(recipe)),
        storage_options=getattr(cache_dir(recipe), "storage_options", {}),
        out=str(run_dir(recipe, run.name)),
        upstreams=recipe.run_upstreams(run),
        **{"progress": False, **run.options},
    )  # fmt: skip  (the stage logs one line per epoch; a step bar would interleave with it)
    train(config, log=lambda line: log(f"  {line}"))
    return ""


def _probe(recipe: Recipe, log: Log) -> str:
    from featcache.analysis.text import format_probe
    from featcache.pipelines.probe import run_probe

    a = recipe.analyse
    found = run_probe(cache_dir(recipe), a.label, task=a.task, out=analysis_dir(recipe, "probe"))
    log(format_probe(found))
    return ""


def _similarity(recipe: Recipe, log: Log) -> str:
    from featcache.analysis.text import format_similarity
    from featcache.pipelines.similarity import run_similarity

    a = recipe.analyse
    found = run_similarity(
        cache_dir(recipe), level=a.similarity_level, out=analysis_dir(recipe, "similarity")
    )
    log(format_similarity(found))
    return ""


def _select(recipe: Recipe, log: Log) -> str:
    from featcache.analysis.text import format_select
    from featcache.pipelines.selection import run_select

    a = recipe.analyse
    found = run_select(
        cache_dir(recipe), a.label, max_models=a.max_models, validate=a.validate,
        out=analysis_dir(recipe, "select"), log=log,
    )  # fmt: skip
    log(format_select(found))
    return ""


def _report(recipe: Recipe, log: Log) -> str:
    from featcache.pipelines import probe, selection, similarity
    from featcache.pipelines.report import run_report

    def done(what, module):
        folder = analysis_dir(recipe, what)
        return folder if (folder / module.DONE).exists() else None

    run_report(
        cache_dir(recipe), recipe.out / "report.html",
        runs=[run_dir(recipe, r.name) for r in recipe.runs],
        probe=done("probe", probe), similarity=done("similarity", similarity),
        selection=done("select", selection), log=log,
    )  # fmt: skip
    return ""


# --- results -----------------------------------------------------------------------------------
def write_results(recipe: Recipe, result: RecipeResult) -> None:
    write_atomic(recipe.out / "results.txt", format_results(result.runs) + "\n")
    write_json(recipe.out / "results.json", results_rows(result.runs), indent=2)
