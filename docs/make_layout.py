"""Write docs/layout.md: every .py file of featcache, cli, pipelines before issue 9 and now.

Run from the repository root: ``python docs/make_layout.py``. What a file owns is the first
sentence of its docstring, unless OVER_BEFORE / OVER_AFTER below say it more exactly.
"""

import ast
import subprocess
from collections import defaultdict

BEFORE = "2d6ca40"
OVER_BEFORE = {
    "featcache/store/base.py": (
        "Abstract `Backend`, `PartSink`, `PartMeta`, `Index`, and also the format table "
        "with `get_backend` (if/elif importing its own subclasses), `list_stores`, the "
        "write step (`PartWriter`), `parse_layers`, `write_json_atomic`, `remove_path`"
    ),
    "featcache/store/__init__.py": (
        "Re-exports `DTYPES`, `FORMATS`, `list_stores`, `parse_layers`, `CacheReader`, `open_cache`"
    ),
    "pipelines/extract.py": (
        "The extraction stage and store policy with it: manifest-change refusal, resume, "
        "overwrite, format clashes, summaries, dask start-up"
    ),
    "pipelines/analyse.py": (
        "All four analysis stages (probe, similarity, select, report), each returning a dict"
    ),
    "pipelines/run.py": (
        "Recipe paths, `plan` (done markers), the dry-run `check`, the stage runner and "
        "the results table"
    ),
    "featcache/manifest.py": (
        "`Manifest`, `Utterance`, `Problem`, line parsing and `validate_manifest`"
    ),
    "featcache/errors.py": "Errors a user can cause (`FeatcacheError` and subclasses)",
    "featcache/fusion/registry.py": (
        "Interface names written three times (`SINGLE`, `_ARGS`, `NAMES`) and `build_interface`"
    ),
}
KALDI = "Kaldi data directories: `wav.scp` plus optional `segments`, `text`, `utt2spk` and more"
OVER_BEFORE["featcache/importers/kaldi.py"] = KALDI
OVER_AFTER = {
    "featcache/importers/kaldi.py": KALDI,
    "featcache/errors.py": (
        "Errors a user can cause: `FeatcacheError` and subclasses, each also the fitting builtin"
    ),
    "featcache/store/__init__.py": (
        "The `FORMATS`, `DTYPES`, `COMPRESSIONS` registries; `get_backend`, `format_of`, "
        "`suffix_of`, `store_name_of`; lazy `Cache`, `open_cache`, `list_stores`"
    ),
    "featcache/manifest.py": (
        "`Manifest` (ordered utterances, unique ids), `write_manifest`, "
        "`validate_manifest`, the `SPLITS` registry"
    ),
    "featcache/fusion/registry.py": (
        "The `INTERFACES` and `ALIGN_DIMS` registries, `build_interface`, the `layer:K` resolution"
    ),
    "featcache/upstreams/registry.py": (
        "Short upstream names (`REGISTRY`), `resolve`, `upstream_slug`"
    ),
    "featcache/train/sampler.py": "Length-bucketed batches of at most `batch_frames` padded frames",
    "pipelines/analyse.py": (
        "Re-exports the four analysis stages (probe, similarity, selection, report)"
    ),
    "featcache/store/cache.py": (
        "`Cache` (a cache folder: manifest copy, stores by any upstream name, readers, "
        "build/resume/append/overwrite decisions) and `open_cache`"
    ),
    "featcache/store/reader.py": "`CacheReader`: reading one layer store",
    "pipelines/extract.py": (
        "The extraction stage, orchestration only: lock, checks, one store per upstream "
        "through `Cache`, parts run here or on dask, progress; `ExtractConfig`, "
        "`ExtractResult`"
    ),
    "pipelines/run.py": (
        "`featcache run`: recipe paths, `plan` (each stage's done marker) and the stage runner"
    ),
}


def files(rev):
    if rev is None:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "featcache", "cli", "pipelines"],
            capture_output=True,
            text=True,
        ).stdout
    else:
        out = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", rev, "--", "featcache", "cli", "pipelines"],
            capture_output=True,
            text=True,
        ).stdout
    return sorted(f for f in out.split() if f.endswith(".py"))


def source(rev, f):
    if rev is None:
        return open(f).read()
    return subprocess.run(["git", "show", f"{rev}:{f}"], capture_output=True, text=True).stdout


def first_sentence(doc):
    text = " ".join(doc.split("\n\n")[0].split())
    for end in (". ", ".\n"):
        if end in text + "\n":
            text = (text + "\n").split(end)[0]
    return text.rstrip(".")


def section(rev, over):
    rows = defaultdict(list)
    total = 0
    big = []
    for f in files(rev):
        src = source(rev, f)
        n = len(src.splitlines())
        total += n
        if n > 350:
            big.append(f"`{f}` ({n})")
        doc = ast.get_docstring(ast.parse(src)) or ""
        what = over.get(f) or first_sentence(doc)
        for role in (":class:`", ":func:`", ":mod:`", ":meth:`", ":data:`"):
            what = what.replace(role, "`")
        what = what.replace("``", "`")
        folder = f.rsplit("/", 1)[0]
        rows[folder].append((f.rsplit("/", 1)[1], n, what.replace("|", "\\|")))
    out = [
        f"{sum(len(v) for v in rows.values())} files, {total} lines; over 350 lines: "
        f"{', '.join(big) if big else 'none'}.",
        "",
    ]
    for folder in sorted(rows):
        out += [f"**{folder}/**", "", "| file | lines | owns |", "|---|---:|---|"]
        out += [f"| `{name}` | {n} | {what} |" for name, n, what in rows[folder]]
        out.append("")
    return out


lines = [
    "# Source layout before and after issue 9",
    "",
    "Every `.py` file of `featcache/`, `cli/` and `pipelines/`, with its length and what it owns",
    "(from its docstring and contents). *Before* is commit 2d6ca40, the state issue 9 was filed",
    "against; *after* is the tree issue 9 leaves (branch `issue9` with main merged in). The",
    "seams and the public names are described in [internal-api.md](internal-api.md).",
    "Regenerate with `python docs/make_layout.py`.",
    "",
    "## Before issue 9 (2d6ca40)",
    "",
    *section(BEFORE, OVER_BEFORE),
    "## After issue 9",
    "",
    *section(None, OVER_AFTER),
]
open("docs/layout.md", "w").write("\n".join(lines).rstrip() + "\n")
