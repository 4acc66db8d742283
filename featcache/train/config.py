"""The training configuration: one dataclass, loadable from TOML, stored as config.json."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError
from featcache.fusion.registry import ALIGN_DIMS, INTERFACES
from featcache.heads.registry import TASKS
from featcache.registry import Registry

PRECISIONS = Registry("precision", "--precision")
PRECISIONS.register(
    "auto", "bfloat16 autocast on CUDA (float16 where unsupported), float32 on CPU", default=True
)
PRECISIONS.register("fp32", "float32 throughout")
PRECISIONS.register("fp16", "float16 autocast with a gradient scaler (CUDA)")
PRECISIONS.register("bf16", "bfloat16 autocast")

NORMALIZATIONS = Registry("input normalisation", "--normalize")
NORMALIZATIONS.register(
    "global", "standardise each upstream/layer/dim with train-split mean/std", default=True
)
NORMALIZATIONS.register("none", "raw cached features, as the paper")

POOLED = Registry("pooled shortcut", "--pooled")
POOLED.register(
    "auto", "train on the stores' pooled means where exact (ws, last, layer:K with classify)",
    default=True,
)  # fmt: skip
POOLED.register("off", "always read frames")

LOADERS = Registry("loader", "--loader")
LOADERS.register(
    "auto", "utterances when the train split's stored frames are under 1 GB, else blocks "
    "(decided by the cache, recorded in the run)", default=True,
)  # fmt: skip
LOADERS.register(
    "blocks", "read storage-order runs of utterances, shuffled by blocks and within a bounded "
    "buffer",
)  # fmt: skip
LOADERS.register("utterances", "one read per utterance, the whole split shuffled")

# fields that say where a run reads and writes, not how it trains (a recipe sets them itself)
LOCATION_FIELDS = ("cache", "out", "upstreams", "manifest")


DEFAULT_INTERFACE = INTERFACES.default  # train, select --validate and recipes share it
DEFAULT_TASK = TASKS.default


@dataclass
class TrainConfig:
    """Everything that defines a training run (the resolved form is the run's config.json).

    ``upstreams`` empty means every upstream in the cache. ``interface_lr`` None means ``lr``.
    ``device`` ``auto`` picks CUDA when available. ``precision`` ``auto`` is bfloat16 autocast on
    CUDA (float16 where bfloat16 is unsupported) and float32 on CPU. ``save_every`` writes
    last.pt every that many optimizer steps besides every epoch (0: epochs only). ``patience``
    stops after that many evaluations without a better dev score. ``normalize`` ``global``
    standardises every upstream's (layer, dimension) with mean/std estimated on at most
    ``normalize_utterances`` training utterances (see :mod:`featcache.train.normalize`);
    ``none`` feeds raw cached features (the paper's setting). ``pooled`` ``auto`` trains on the
    stores' ``pooled/mean`` where that is exact (see :mod:`featcache.train.pooled`); ``off``
    always reads frames. ``loader`` ``blocks`` reads storage-order runs of utterances
    (:mod:`featcache.train.blocks`), ``utterances`` one utterance per item, ``auto`` picks one
    from the size of the train split (:func:`featcache.train.loaders.choose_loader`).
    ``cache_in_memory`` ``auto`` holds the train (and dev) frames in memory when they fit half
    the available memory, ``off`` never, a number is the budget in GB.
    ``none`` feeds raw cached features (the paper's setting). ``threads`` sets torch's thread
    count for the run (None: torch's default, all cores); ``progress`` shows a step bar.
    """

    cache: str = ""
    out: str = ""
    upstreams: list[str] = field(default_factory=list)
    task: str = DEFAULT_TASK
    label: str = "speaker"
    interface: str = DEFAULT_INTERFACE
    manifest: str | None = None
    split_field: str = "split"
    epochs: int = 20
    max_steps: int | None = None
    batch_frames: int = 2000
    lr: float = 1e-3
    interface_lr: float | None = None
    weight_decay: float = 0.01
    grad_accum: int = 1
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    precision: str = PRECISIONS.default
    num_workers: int = 2
    patience: int = 5
    save_every: int = 0
    align_dim: str = ALIGN_DIMS.default
    normalize: str = NORMALIZATIONS.default
    normalize_utterances: int = 200
    pooled: str = POOLED.default
    loader: str = LOADERS.default
    cache_in_memory: str = "auto"
    threads: int | None = None
    progress: bool = True
    # a URL cache's file-system options (secrets are not written to config.json) and the
    # local folder of its read-through chunk cache; neither changes what a run computes
    storage_options: dict[str, Any] = field(default_factory=dict)
    chunk_cache: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be >= 1"),
            (self.batch_frames >= 1, "--batch-frames must be >= 1"),
            (self.grad_accum >= 1, "--grad-accum must be >= 1"),
            (self.num_workers >= 0, "--num-workers must be >= 0"),
            (self.patience >= 1, "--patience must be >= 1"),
            (self.save_every >= 0, "--save-every must be >= 0"),
            (self.lr > 0, "--lr must be positive"),
            (self.normalize_utterances >= 1, "--normalize-utterances must be >= 1"),
            (_memory_spec_ok(self.cache_in_memory), "--cache-in-memory: auto|off|GB (>= 0)"),
            (self.threads is None or self.threads >= 1, "--threads must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        for registry, value in ((PRECISIONS, self.precision), (ALIGN_DIMS, self.align_dim),
                                (NORMALIZATIONS, self.normalize), (TASKS, self.task),
                                (POOLED, self.pooled), (LOADERS, self.loader)):  # fmt: skip
            registry.get(value)
        INTERFACES.parse(self.interface)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["storage_options"] = _public(values["storage_options"])
        return values

    @classmethod
    def option_names(cls) -> list[str]:
        """Every field name, in declaration order (``--config`` TOML keys)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def training_options(cls) -> list[str]:
        """The fields that say how to train (those a recipe's ``[train]`` table may set)."""
        return [n for n in cls.option_names() if n not in LOCATION_FIELDS]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict with keys as field names (``-`` accepted for ``_``)."""
        names = set(cls.option_names())
        clean = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name == "upstream":
                name = "upstreams"
            if name not in names:
                raise ConfigError(
                    f"{source}: unknown training option {key!r}; known: {', '.join(sorted(names))}"
                )
            clean[name] = value
        if "cache_in_memory" in clean:
            clean["cache_in_memory"] = str(clean["cache_in_memory"])
        if isinstance(clean.get("upstreams"), str):
            clean["upstreams"] = [clean["upstreams"]]
        return cls(**clean)


def _memory_spec_ok(spec) -> bool:
    if spec in ("auto", "off"):
        return True
    try:
        return float(spec) >= 0
    except (TypeError, ValueError):
        return False


_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas")


def _public(options: dict) -> dict:
    """Storage options without credentials (nested dicts too), safe to write to a run folder."""
    out = {}
    for k, v in options.items():
        if isinstance(v, dict):
            out[k] = _public(v)
        elif not any(word in k.lower() for word in _SECRET_WORDS):
            out[k] = v
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Training options from a TOML file: top-level keys, or those of a ``[train]`` table."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--config {path}: is a folder; give a TOML file of training options")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path}: not a text (TOML) file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return dict(data.get("train", data))


def resolve_config(options: dict[str, Any], config_file: str | Path | None = None) -> TrainConfig:
    """Merge a TOML file's values with explicit options (options win; None means unset)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        TrainConfig.from_dict(load_toml(config_file), str(config_file))  # reject unknown keys
        values.update(load_toml(config_file))
        values = {k.replace("-", "_"): v for k, v in values.items()}
    for key, value in options.items():
        if value is None or (key == "upstreams" and not value):
            continue
        values[key] = value
    return TrainConfig.from_dict(values)
