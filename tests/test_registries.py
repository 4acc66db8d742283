"""Registries are the one place each kind of name is written, and adding a name is one entry.

The CLI's choices must equal the registries' names; ``cli/`` must not spell a registered name
itself; recipes take exactly TrainConfig's training fields; and a new interface or head is one
file plus one registry entry, after which building, training and recipe validation accept it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
import textwrap
from pathlib import Path

import click
import numpy as np
import pytest

from featcache.analysis.registry import LEVELS, PROBE_TASKS
from featcache.cli.main import COMMANDS
from featcache.demo_data import ENGINES
from featcache.fusion.registry import ALIGN_DIMS, INTERFACES, InterfaceSpec, build_interface
from featcache.heads.registry import TASKS
from featcache.importers import IMPORTERS
from featcache.importers.folder import LABEL_SOURCES
from featcache.importers.mlsuperb import TRAIN_SETS
from featcache.manifest import SPLITS
from featcache.store import COMPRESSIONS, DTYPES, FORMATS
from featcache.train.config import (
    LOADERS,
    LOCATION_FIELDS,
    NORMALIZATIONS,
    POOLED,
    PRECISIONS,
    TrainConfig,
)
from featcache.upstreams.device import AUTOCASTS
from featcache.upstreams.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]

# (command, parameter) -> the registry its choices come from
CHOICES = {
    ("extract", "format_"): FORMATS,
    ("extract", "dtype"): DTYPES,
    ("extract", "compression"): COMPRESSIONS,
    ("extract", "autocast"): AUTOCASTS,
    ("train", "task"): TASKS,
    ("train", "precision"): PRECISIONS,
    ("train", "align_dim"): ALIGN_DIMS,
    ("train", "normalize"): NORMALIZATIONS,
    ("train", "pooled"): POOLED,
    ("train", "loader"): LOADERS,
    ("probe", "task"): PROBE_TASKS,
    ("probe", "level"): LEVELS,
    ("select", "task"): PROBE_TASKS,
    ("similarity", "level"): LEVELS,
    ("manifest import", "kind"): IMPORTERS,
    ("manifest import", "label_from"): LABEL_SOURCES,
    ("manifest import", "config"): TRAIN_SETS,
    ("evaluate", "split"): SPLITS,
    ("demo-data", "engines"): ENGINES,
}
REGISTRIES = [FORMATS, DTYPES, COMPRESSIONS, AUTOCASTS, TASKS, PRECISIONS, ALIGN_DIMS,
              NORMALIZATIONS, POOLED, LOADERS, PROBE_TASKS, LEVELS, IMPORTERS, INTERFACES,
              REGISTRY, LABEL_SOURCES, TRAIN_SETS, SPLITS, ENGINES]  # fmt: skip


def _commands():
    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, command


def test_cli_choices_are_the_registries_names():
    seen = set()
    for name, command in _commands():
        for param in command.params:
            if not isinstance(param.type, click.Choice):
                continue
            key = (name, param.name)
            seen.add(key)
            assert key in CHOICES, f"{key}: a click.Choice that no registry provides"
            assert list(param.type.choices) == CHOICES[key].names(), key
            if isinstance(param.default, str):  # an option's default is the registry's
                assert param.default == CHOICES[key].default, key
    assert set(CHOICES) <= seen


def test_interface_and_task_help_lists_every_name():
    commands = dict(_commands())
    helps = {p.name: p.help for p in commands["train"].params}
    for spelling in INTERFACES.spellings():
        assert f"{spelling}:" in helps["interface"]
    for name in TASKS:
        assert f"{name}:" in helps["task"]


def test_cli_spells_no_registered_name_itself():
    # "train" is also a command's name, "none"/"auto"/"dir"/"csv" common words of help texts
    names = {n for r in REGISTRIES for n in r.names()} - {"none", "auto", "dir", "csv", "train"}
    for file in sorted((ROOT / "cli").glob("*.py")):
        tree = ast.parse(file.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    assert node.value not in names, f"{file.name}:{node.lineno}: {node.value!r}"


def test_recipe_train_keys_are_trainconfig_fields():
    from featcache.pipelines.recipe import TRAIN_KEYS

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert TRAIN_KEYS == fields - set(LOCATION_FIELDS)
    assert set(LOCATION_FIELDS) <= fields


def test_every_registry_name_has_help_and_unknown_names_list_the_choices():
    from featcache.errors import ConfigError

    for registry in REGISTRIES:
        assert registry.names() and all(registry[n].help for n in registry)
        with pytest.raises(ConfigError, match="use one of"):
            registry.get("no-such-name")


# ---- adding an interface or a head: one file plus one registry entry

INTERFACE_FILE = '''
"""mean: the plain mean of the layers (a plug-in interface for the test)."""
from featcache.fusion.base import Interface


class MeanOfLayers(Interface):
    def __init__(self, num_layers, hidden_size):
        super().__init__()
        self.output_dim = hidden_size

    def fuse(self, x):
        return x.mean(dim=0)  # (L, B, T, D) -> (B, T, D)
'''

HEAD_FILE = '''
"""A regression head (a plug-in task for the test): linear, masked mean, linear -> 1 value."""
import torch
from torch import nn

from featcache.heads.base import Task, masked_mean


class Head(nn.Module):
    def __init__(self, input_dim):
        super().__init__()
        self.proj, self.out = nn.Linear(input_dim, 16), nn.Linear(16, 1)

    def forward(self, features, mask):
        return self.out(masked_mean(self.proj(features), mask)).squeeze(-1)  # (B,)


class RegressTask(Task):
    main_metric = "mse"
    higher_is_better = False

    def fit(self, values):
        return self

    def encode(self, value):
        return float(value)

    def collate(self, targets):
        return {"target": torch.tensor(targets, dtype=torch.float32)}

    def build_head(self, input_dim):
        return Head(input_dim)

    def loss(self, outputs, batch):
        return nn.functional.mse_loss(outputs.float(), batch["target"])

    def decode(self, outputs, batch):
        return outputs.float().tolist()

    def score(self, refs, preds):
        return {"mse": sum((float(r) - p) ** 2 for r, p in zip(refs, preds)) / len(refs)}

    def state(self):
        return {}

    def load_state(self, state):
        return self
'''


@pytest.fixture
def plugins(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "fc_mean_interface.py").write_text(textwrap.dedent(INTERFACE_FILE))
    (folder / "fc_regress_head.py").write_text(textwrap.dedent(HEAD_FILE))
    sys.path.insert(0, str(folder))
    INTERFACES.register("mean", "the mean of the layers",
                        InterfaceSpec(single="fc_mean_interface:MeanOfLayers"))  # fmt: skip
    TASKS.register("regress", "regression, mean squared error", "fc_regress_head:RegressTask")
    yield
    INTERFACES.remove("mean")
    TASKS.remove("regress")
    sys.path.remove(str(folder))
    for name in ("fc_mean_interface", "fc_regress_head"):
        sys.modules.pop(name, None)


def test_a_new_interface_is_one_file_plus_one_entry(plugins):
    import torch

    x, y = torch.randn(3, 2, 5, 4), torch.randn(2, 2, 7, 6)
    one = build_interface("mean", [(3, 4)])
    torch.testing.assert_close(one([x]), x.mean(dim=0))
    two = build_interface("mean", [(3, 4), (2, 6)])  # per model, then concatenated + projected
    assert two([x, y]).shape == (2, 7, 6)
    assert "mean:" in INTERFACES.help_text()


def test_a_new_head_trains_end_to_end_and_recipes_accept_it(plugins, tmp_path):
    from featcache.manifest import Manifest
    from featcache.pipelines.recipe import load_recipe
    from featcache.pipelines.train import train
    from featcache.testing.caches import write_cache

    rng = np.random.default_rng(0)
    arrays, records = {}, []
    for i in range(48):
        frames = rng.standard_normal((12, 2, 4)).astype(np.float32)  # (T, L, D)
        target = 3.0 * float(frames[:, :, 0].mean()) + 5.0  # linear in the layers' mean
        arrays[f"u{i:02d}"] = frames
        split = "train" if i < 32 else ("dev" if i < 40 else "test")
        records.append({"id": f"u{i:02d}", "audio": f"/a/{i}.wav", "split": split, "y": target})
    write_cache(tmp_path / "cache", "up", arrays, Manifest.from_records(records))
    config = TrainConfig(cache=str(tmp_path / "cache"), out=str(tmp_path / "run"), task="regress",
                         label="y", interface="mean", epochs=60, patience=60, lr=1e-2,
                         num_workers=0, device="cpu")  # fmt: skip
    summary = train(config, log=lambda line: None)
    tests = [r["y"] for r in records if r["split"] == "test"]
    zero_predictor = sum(t * t for t in tests) / len(tests)  # ~25: what an untrained head scores
    assert summary["main_metric"] == "mse" and summary["interface"] == "mean"
    assert summary["metrics"]["test"]["mse"] < 0.05 * zero_predictor

    recipe = tmp_path / "r.toml"
    recipe.write_text(
        textwrap.dedent("""
        [data]
        manifest = "m.jsonl"
        [extract]
        upstreams = ["fbank"]
        [train]
        task = "regress"
        label = "y"
        [[train.runs]]
        name = "mean"
        upstreams = "all"
        interface = "mean"
    """)
    )
    assert load_recipe(recipe).runs[0].options["interface"] == "mean"
