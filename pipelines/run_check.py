"""``featcache run --dry-run``: check a recipe without doing any of its work.

Data (the manifest, or the import it describes), labels and splits, every upstream's config and
the layers ``[extract]`` keeps, and each run's task and interface against those layers: all the
mistakes a recipe can hold, listed at once, before an hour of extraction would find the first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from featcache.errors import FeatcacheError
from featcache.pipelines.recipe import Recipe

Log = Callable[[str], None]


def check(recipe: Recipe, log: Log = print) -> list[str]:
    """Dry run: check data, labels, upstream names, interfaces and tasks; return the problems."""
    from featcache.manifest import Manifest, validate_manifest

    shapes, problems = _check_upstreams(recipe)
    for run in recipe.runs:
        problems += _check_run(recipe, run, shapes)

    manifest = None
    with tempfile.TemporaryDirectory() as tmp:
        if recipe.data.kind == "demo":
            import shutil

            if shutil.which("espeak-ng") is None:
                problems.append("espeak-ng is not installed (apt-get install espeak-ng)")
        else:
            path = recipe.data.manifest
            if recipe.data.kind == "import":
                from featcache.importers import import_manifest

                path = Path(tmp) / "manifest.jsonl"
                try:
                    import_manifest(
                        recipe.data.importer, recipe.data.source, path, **recipe.data.options
                    )
                except FeatcacheError as e:
                    problems.append(f"data: {e}")
                    path = None
            if path is not None:
                found = validate_manifest(path)
                problems += [f"data: {p}" for p in found[:20]]
                if len(found) > 20:
                    problems.append(f"data: ... and {len(found) - 20} more manifest problems")
                if not found:
                    manifest = Manifest.load(path)
                    log(f"data: {len(manifest)} utterances, fields {', '.join(manifest.fields())}")
        if manifest is not None:
            problems += _check_labels(recipe, manifest)
    return problems


def _check_upstreams(recipe: Recipe) -> tuple[dict[str, list[int]], list[str]]:
    """Resolve every upstream and read its config (as extract does); the layers each keeps."""
    from featcache.store import parse_layers
    from featcache.upstreams.precheck import inspect_upstream

    kept, problems = {}, []
    for name in recipe.extract.upstreams:
        try:
            shape = inspect_upstream(name)
            layers = parse_layers(recipe.extract.layers, shape.num_layers, f"upstream {name!r}")
            kept[name] = (layers, shape.hidden_size)
        except FeatcacheError as e:
            problems.append(f"extract: {e}")
    return kept, problems


def _check_run(recipe: Recipe, run, kept) -> list[str]:
    """A run's upstreams, task and interface, against the layers extract will keep."""
    from featcache.fusion.registry import ALIGN_DIMS, check_fits, selected_layers
    from featcache.heads.registry import TASKS
    from featcache.pipelines.train import check_interface
    from featcache.train.config import DEFAULT_INTERFACE, DEFAULT_TASK

    where = f"run {run.name!r}"
    task = run.options.get("task", DEFAULT_TASK)
    problems = [] if task in TASKS else [f"{where}: unknown task {task!r}"]
    names = recipe.run_upstreams(run)
    unknown = [n for n in names if n not in recipe.extract.upstreams]
    if unknown:
        return [*problems, f"{where}: upstream(s) {unknown} are not in [extract] upstreams"]
    if any(n not in kept for n in names):
        return problems  # reported under extract
    interface = run.options.get("interface", DEFAULT_INTERFACE)
    try:
        stored = [kept[n][0] for n in names]
        layers = selected_layers(interface, stored, names) or stored  # last/layer:K: one layer
        shapes = [(len(sel), kept[n][1]) for sel, n in zip(layers, names, strict=True)]
        check_fits(interface, shapes)
        check_interface(interface, shapes, run.options.get("align_dim", ALIGN_DIMS.default), layers)
    except FeatcacheError as e:
        problems.append(f"{where}: interface {interface!r}: {e}")
    return problems


def _check_labels(recipe: Recipe, manifest) -> list[str]:
    from featcache.train.config import TrainConfig

    problems = []
    wanted = {(r.name, r.options.get("label", TrainConfig().label)) for r in recipe.runs}
    if recipe.analyse.label:
        wanted.add(("analyse", recipe.analyse.label))
    fields = set(manifest.fields())
    for who, label in sorted(wanted):
        if label not in fields:
            problems.append(
                f"{who}: label {label!r} is not a field of the manifest (fields: {sorted(fields)})"
            )
    splits = set(manifest.labels("split"))
    if recipe.runs and not {"train", "dev"} <= splits:
        problems.append(
            f"data: training needs train and dev splits; the manifest has {sorted(splits, key=str)}"
        )
    return problems
