"""Declarative end-to-end recipes: what a TOML recipe may say, parsed into dataclasses.

A recipe names its data (the synthesized demo corpus, a manifest, or a corpus layout plus an
importer), the upstreams to extract, the fusion runs to train and the analyses to make::

    name = "emotion"
    out = "runs/superb-er"
    [data]
    importer = "iemocap"            # or: manifest = "x.jsonl", or: demo = {utterances = 240}
    source = "/data/IEMOCAP_full_release"
    [extract]
    upstreams = ["hubert-base", "wavlm-base-plus", "data2vec-base", "whisper-small"]
    [train]                          # defaults for every run
    task = "classify"
    label = "emotion"
    [[train.runs]]
    name = "hconv-whisper-wavlm"
    upstreams = ["whisper-small", "wavlm-base-plus"]
    interface = "hconv"
    [analyse]
    label = "emotion"

In a run, ``upstreams = "all"`` means every extracted upstream, ``"first"`` the first one, and
``"each"`` one single-model run per extracted upstream (named ``<name>-<store name>``), so that a
fusion is compared with every model alone, whatever ``-u`` swapped in.
Relative paths resolve against the recipe file's folder, except ``out``, which resolves against
the working directory. A top-level ``threads = N`` sets the torch threads of every stage (tiny
models run as fast on one thread and do not stall when other jobs share the cores).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError
from featcache.importers import IMPORTERS
from featcache.store import DTYPES, FORMATS
from featcache.train.config import TrainConfig

# TrainConfig fields a recipe may set (cache/out/upstreams/manifest are the recipe's own)
TRAIN_KEYS = frozenset(TrainConfig.training_options())


@dataclass
class DataSpec:
    kind: str  # "demo" | "manifest" | "import"
    manifest: Path | None = None
    importer: str | None = None
    source: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    utterances: int = 240
    seed: int = 0


@dataclass
class ExtractSpec:
    upstreams: list[str]
    format: str = FORMATS.default
    dtype: str = DTYPES.default
    layers: str | None = None
    device: str = "auto"
    batch_seconds: float = 30.0
    workers: int | None = None


@dataclass
class RunSpec:
    name: str
    upstreams: list[str] | str
    options: dict[str, Any]  # TrainConfig fields


@dataclass
class AnalyseSpec:
    label: str | None = None
    task: str = "classify"
    probe: bool = True
    similarity: bool = True
    similarity_level: str = "pooled"
    select: bool = True
    max_models: int = 2
    validate: int = 0
    report: bool = True


@dataclass
class Recipe:
    name: str
    path: Path
    out: Path
    data: DataSpec
    extract: ExtractSpec
    runs: list[RunSpec]
    analyse: AnalyseSpec
    description: str = ""
    threads: int | None = None  # torch threads for every stage; None = all cores
    cache: object = None  # a folder, URL or RemoteDir instead of out/cache (`run --cache`)

    def run_upstreams(self, run: RunSpec) -> list[str]:
        """The upstream names a training run uses."""
        if run.upstreams == "all":
            return list(self.extract.upstreams)
        if run.upstreams == "first":
            return [self.extract.upstreams[0]]
        return list(run.upstreams)


def load_recipe(path: str | Path, out: str | Path | None = None, source: str | Path | None = None,
                upstreams: list[str] | None = None) -> Recipe:  # fmt: skip
    """Parse and check a recipe; ``out``, ``source`` and ``upstreams`` override its values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found; see pipelines/recipes/ for examples")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe {path} is not valid TOML: {e}") from None
    where = str(path)
    _only(
        raw, {"name", "description", "out", "threads", "data", "extract", "train", "analyse"}, where
    )
    root = path.resolve().parent
    data = _data(_table(raw, "data", where), root, f"{where} [data]", source)
    extract = _extract(_table(raw, "extract", where), f"{where} [extract]", upstreams)
    runs = _runs(raw.get("train", {}), f"{where} [train]")
    analyse = _analyse(raw.get("analyse", {}), f"{where} [analyse]")
    name = str(raw.get("name", path.stem))
    out_dir = Path(out) if out is not None else Path(raw.get("out", f"featcache-{name}"))
    threads = raw.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"{where}: threads must be a positive integer, got {threads!r}")
    runs = _expand_each(runs, extract.upstreams, where)
    recipe = Recipe(name, path, out_dir, data, extract, runs, analyse, raw.get("description", ""),
                    threads)  # fmt: skip
    for run in runs:
        missing = [u for u in recipe.run_upstreams(run) if u not in extract.upstreams]
        if missing:
            raise ConfigError(
                f"{where}: run {run.name!r} uses {missing}, which [extract] upstreams does not "
                f"list; add them there"
            )
    return recipe


def _expand_each(runs: list[RunSpec], upstreams: list[str], where: str) -> list[RunSpec]:
    """``upstreams = "each"``: one single-model run per extracted upstream."""
    from featcache.store.names import store_name

    out = []
    for run in runs:
        if run.upstreams != "each":
            out.append(run)
            continue
        out += [RunSpec(f"{run.name}-{store_name(u)}", [u], dict(run.options)) for u in upstreams]
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: run names must be unique, got {names}")
    return out


def _table(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: missing [{key}] table")
    return value


def _only(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _data(t: dict, root: Path, where: str, source) -> DataSpec:
    _only(t, {"demo", "manifest", "importer", "source", "options"}, where)
    kinds = [k for k in ("demo", "manifest", "importer") if k in t]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: give exactly one of demo, manifest or importer")
    if "demo" in t:
        demo = t["demo"] if isinstance(t["demo"], dict) else {}
        _only(demo, {"utterances", "seed"}, f"{where} demo")
        return DataSpec(
            "demo", utterances=int(demo.get("utterances", 240)), seed=int(demo.get("seed", 0))
        )
    if "manifest" in t:
        return DataSpec("manifest", manifest=_given(source) or _path(t["manifest"], root))
    if source is None and "source" not in t:
        raise ConfigError(f"{where}: importer {t['importer']!r} needs source = PATH (or --source)")
    try:
        IMPORTERS.get(str(t["importer"]))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return DataSpec("import", importer=str(t["importer"]), source=_given(source) or _path(t["source"], root),
                    options=dict(t.get("options", {})))  # fmt: skip


def _path(value, root: Path) -> Path:
    """A recipe path: relative to the recipe's folder."""
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else root / p


def _given(value) -> Path | None:
    """A path from the command line: relative to the working directory."""
    return None if value is None else Path(value).expanduser().resolve()


def _extract(t: dict, where: str, upstreams) -> ExtractSpec:
    allowed = {f.name for f in fields(ExtractSpec)}
    _only(t, allowed, where)
    values = dict(t)
    if upstreams:
        values["upstreams"] = list(upstreams)
    if not values.get("upstreams"):
        raise ConfigError(f"{where}: upstreams = [...] is required")
    for registry, key in ((FORMATS, "format"), (DTYPES, "dtype")):
        if key in values:
            try:
                registry.get(values[key])
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
    return ExtractSpec(**values)


def _runs(t: dict, where: str) -> list[RunSpec]:
    defaults = {k: v for k, v in t.items() if k != "runs"}
    _only(defaults, TRAIN_KEYS, where)
    runs = []
    for i, r in enumerate(t.get("runs", []), start=1):
        if "name" not in r or "upstreams" not in r:
            raise ConfigError(f"{where} run {i}: name and upstreams are required")
        _only(r, TRAIN_KEYS | {"name", "upstreams"}, f"{where} run {r['name']!r}")
        ups = r["upstreams"]
        if isinstance(ups, str) and ups not in ("all", "first", "each"):
            ups = [ups]
        options = {**defaults, **{k: v for k, v in r.items() if k not in ("name", "upstreams")}}
        try:  # names and values checked against the registries now, not after extraction
            TrainConfig.from_dict(options, f"{where} run {r['name']!r}")
        except ConfigError as e:
            raise ConfigError(f"{where} run {r['name']!r}: {e}") from None
        runs.append(RunSpec(str(r["name"]), ups, options))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: run names must be unique, got {names}")
    return runs


def _analyse(t: dict, where: str) -> AnalyseSpec:
    _only(t, {f.name for f in fields(AnalyseSpec)}, where)
    return AnalyseSpec(**t)


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe file: a path, or the name of a recipe shipped with featcache (``demo``)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml":
        return path
    from importlib.resources import files

    shipped = files("featcache.pipelines") / "recipes" / f"{name_or_path}.toml"
    if not shipped.is_file():
        available = sorted(p.name[:-5] for p in (files("featcache.pipelines") / "recipes").iterdir()
                           if p.name.endswith(".toml"))  # fmt: skip
        raise ConfigError(f"no recipe {name_or_path!r}; give a .toml path or one of {available}")
    return Path(str(shipped))
