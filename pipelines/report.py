"""The report stage: one self-contained HTML page of a cache, its analyses and training runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featcache.atomic import read_json, write_atomic
from featcache.errors import ConfigError
from featcache.pipelines.probe import DONE as PROBE_DONE
from featcache.pipelines.probe import run_probe
from featcache.pipelines.selection import DONE as SELECTION_DONE
from featcache.pipelines.similarity import DONE as SIMILARITY_DONE
from featcache.pipelines.similarity import load_similarity, run_similarity
from featcache.store import Cache


def run_report(
    cache,
    out,
    *,
    runs: Sequence = (),
    upstreams: Sequence[str] = (),
    probe=None,
    similarity=None,
    selection=None,
    label: str | None = None,
    manifest=None,
    log=print,
) -> Path:
    """Write the HTML report of a cache (and training runs) to the file ``out``.

    Probe results come from ``probe`` (a ``featcache probe --out`` folder), else are computed when
    ``label`` is given; similarity from ``similarity`` (a ``featcache similarity --out`` folder),
    else is computed at the pooled level (cheap).
    """
    from featcache.analysis.report import build_report, read_run
    from featcache.store.info import describe_cache

    # every folder given must exist before anything slow runs
    for folder, file, command in ((probe, PROBE_DONE, "featcache probe"),
                                  (similarity, SIMILARITY_DONE, "featcache similarity"),
                                  (selection, SELECTION_DONE, "featcache select")):  # fmt: skip
        if folder is not None:
            _need(Path(folder) / file, command)
    for r in runs:
        _need(Path(r), "featcache train")
        if not (Path(r) / "config.json").exists():
            raise ConfigError(
                f"--runs {r}: not a training run folder (no config.json); pass the --out "
                f"folders of `featcache train`"
            )
    stores = describe_cache(cache)
    if upstreams:
        names = set(Cache.open(cache).readers(upstreams))
        stores = [s for s in stores if s["name"] in names]
    if probe is not None:
        probe_result = read_json(_need(Path(probe) / PROBE_DONE, "featcache probe"))
    elif label is not None:
        log(f"probing {label!r} (pass --probe DIR to reuse `featcache probe` output)")
        probe_result = run_probe(cache, label, upstreams=upstreams, manifest=manifest)
    else:
        probe_result = None
    if similarity is not None:
        _need(Path(similarity) / SIMILARITY_DONE, "featcache similarity")
        sim_result = load_similarity(similarity)
    else:
        log("computing pooled CKA (pass --similarity DIR to reuse `featcache similarity` output)")
        sim_result = run_similarity(cache, upstreams=upstreams, manifest=manifest)
    select_result = None
    if selection is not None:
        file = _need(Path(selection) / SELECTION_DONE, "featcache select")
        select_result = read_json(file)
    from featcache.pipelines.contribution import layer_contribution

    run_info = [read_run(_need(Path(r), "featcache train")) for r in runs]
    for info in run_info:
        if (Path(info["path"]) / "best.pt").exists():
            log(f"{info['name']}: dev score with each input layer zeroed (cached in the run)")
            info["contribution"] = layer_contribution(info["path"], "dev", log=lambda line: None)
    page = build_report(cache=str(cache), stores=stores, probe=probe_result,
                        similarity=sim_result, runs=run_info,
                        selection=select_result)  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, page)


def _need(path: Path, command: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give the output folder of `{command}`")
    return path
