"""The layer order of anovit's packages (docs/architecture.md), enforced: every module sits in one layer of
the table below, imports only from lower layers or from its own package, and no import cycle exists.

Imports are read with ``ast`` from the sources (module-level and function-level alike). Importing
``anovit.pkg.mod`` also runs ``anovit/pkg/__init__.py``, so a package's ``__init__`` belongs to the package's
layer and its re-exports count as its imports. The root ``anovit/__init__.py`` is the public API: it imports
``anovit._version`` at module level and everything else lazily (inside ``__getattr__``), so that importing a
low layer never runs a high one; the test checks that too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "anovit"

# Layers, lowest first. A module may import modules of a strictly lower layer, or of its own package.
LAYERS: dict[str, int] = {
    "utils": 0,
    "models": 1, "visualization": 1,
    "data": 2,
    "runs": 3,
    "scoring": 4,
    "training": 5,
    "evaluation": 6,
    "report": 7,
    "hub": 8, "deploy": 8, "jobs": 8,
    "app": 9, "cli": 9,
    "api": 10,  # anovit/__init__.py (the public API) and anovit/__main__.py
}

# Every module of the package, by layer. A module missing here fails test_every_module_has_a_layer.
MODULES: dict[str, tuple[str, ...]] = {
    "utils": ("anovit._version", "anovit.utils", "anovit.utils.errors", "anovit.utils.network",
              "anovit.utils.prefetch", "anovit.utils.progress", "anovit.utils.runtime", "anovit.utils.setting_flags", "anovit.utils.settings",
              "anovit.utils.validation"),
    "models": ("anovit.models", "anovit.models.anovit", "anovit.models.attention", "anovit.models.cae",
               "anovit.models.encoder", "anovit.models.masking", "anovit.models.tiling"),
    "visualization": ("anovit.visualization", "anovit.visualization.figures", "anovit.visualization.imaging"),
    "data": ("anovit.data", "anovit.data.augment", "anovit.data.check", "anovit.data.check_layouts",
             "anovit.data.check_report", "anovit.data.digits", "anovit.data.download", "anovit.data.folder",
             "anovit.data.layouts", "anovit.data.mvtec3d", "anovit.data.mvtec_loco", "anovit.data.visa",
             "anovit.data.image_cache", "anovit.data.imageio", "anovit.data.items", "anovit.data.mvtec", "anovit.data.mvtec_ad",
             "anovit.data.one_class", "anovit.data.paths", "anovit.data.registry", "anovit.data.samples",
             "anovit.data.splits", "anovit.data.synthetic", "anovit.data.torchvision_sets", "anovit.data.unified"),
    "runs": ("anovit.runs", "anovit.runs.catalog", "anovit.runs.checkpoint", "anovit.runs.lock",
             "anovit.runs.metrics_record", "anovit.runs.provenance", "anovit.runs.record", "anovit.runs.resume"),
    "scoring": ("anovit.scoring", "anovit.scoring.anomaly_map", "anovit.scoring.calibration", "anovit.scoring.detector",
                "anovit.scoring.run_scoring", "anovit.scoring.stored_fit", "anovit.scoring.structural"),
    "training": ("anovit.training", "anovit.training.config", "anovit.training.distributed",
                 "anovit.training.schedule", "anovit.training.trainer"),
    "evaluation": ("anovit.evaluation", "anovit.evaluation.ablation_variants", "anovit.evaluation.ablations",
                   "anovit.evaluation.benchmark", "anovit.evaluation.defect_types", "anovit.evaluation.evaluate",
                   "anovit.evaluation.launchers", "anovit.evaluation.metrics", "anovit.evaluation.pixel_histograms",
                   "anovit.evaluation.results_table", "anovit.evaluation.run_statistics", "anovit.evaluation.sweep", "anovit.evaluation.unified",
                   "anovit.evaluation.uncertainty"),
    "report": ("anovit.report", "anovit.report.deviations", "anovit.report.intervals", "anovit.report.paper_tables",
               "anovit.report.render", "anovit.report.unified",
               "anovit.report.reproduction", "anovit.report.tables"),
    "hub": ("anovit.hub", "anovit.hub.catalog", "anovit.hub.model_card", "anovit.hub.pretrained", "anovit.hub.repo"),
    "deploy": ("anovit.deploy", "anovit.deploy.export", "anovit.deploy.onnx_scorer"),
    "jobs": ("anovit.jobs", "anovit.jobs.background", "anovit.jobs.queue"),
    "app": ("anovit.app", "anovit.app.ablations", "anovit.app.attention_explorer", "anovit.app.common",
            "anovit.app.data_roots", "anovit.app.gallery", "anovit.app.heatmaps", "anovit.app.home", "anovit.app.hub_page",
            "anovit.app.intervals", "anovit.app.inspection", "anovit.app.partners", "anovit.app.pickers",
            "anovit.app.predictions", "anovit.app.results", "anovit.app.settings_form", "anovit.app.training"),
    "cli": ("anovit.cli", "anovit.cli.data", "anovit.cli.hub", "anovit.cli.main", "anovit.cli.report",
            "anovit.cli.score"),
    "api": ("anovit", "anovit.__main__"),
}
GROUP = {module: group for group, modules in MODULES.items() for module in modules}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> list[tuple[int, str, bool]]:
    """(line, imported anovit module, at module level) for every import in ``path``: ``from pkg import name``
    names the submodule when ``pkg.name`` is a module, else ``pkg``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, id(node) in top_level) for a in node.names if a.name.split(".")[0] == "anovit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "anovit":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in known else target, id(node) in top_level))
    return found


def runs_on_import(module: str, importer: str) -> list[str]:
    """The packages whose ``__init__`` importing ``module`` runs, below the root (anovit.a.b -> [anovit.a]),
    less those the importer's own import already ran (its ancestor packages)."""
    parts = module.split(".")
    return [p for p in (".".join(parts[:k]) for k in range(2, len(parts))) if not importer.startswith(p + ".")]


def package_of(module: str) -> str:
    return module if module == "anovit" else ".".join(module.split(".")[:2])


def test_every_module_has_a_layer() -> None:
    modules = set(source_modules())
    assert not modules - set(GROUP), f"modules missing from the layer table: {sorted(modules - set(GROUP))}"
    assert not set(GROUP) - modules, f"table entries with no module: {sorted(set(GROUP) - modules)}"
    assert set(MODULES) == set(LAYERS)


def violations() -> list[str]:
    modules = source_modules()
    known = set(modules)
    found = []
    for module, path in modules.items():
        if module == "anovit":
            continue  # the public API (checked below)
        for line, target, _ in imports(path, known):
            for dependency in [target, *runs_on_import(target, module)]:  # the first one that breaks the order
                if dependency not in GROUP or package_of(dependency) == package_of(module):
                    continue
                mine, theirs = GROUP[module], GROUP[dependency]
                if LAYERS[theirs] >= LAYERS[mine]:
                    found.append(f"{path.relative_to(PACKAGE.parent)} line {line}: {module} (layer {mine}, "
                                 f"{LAYERS[mine]}) imports {dependency} (layer {theirs}, {LAYERS[theirs]})")
                    break
    return found


def test_imports_go_down_the_layers_only() -> None:
    assert not violations(), "imports against the layer order:\n" + "\n".join(violations())


def test_the_root_package_imports_only_the_version_when_imported() -> None:
    modules = source_modules()
    eager = [t for _, t, top in imports(modules["anovit"], set(modules)) if top]
    assert eager == ["anovit._version"], f"anovit/__init__.py imports {eager} at module level; import them lazily"


def find_cycle() -> list[str] | None:
    """One import cycle among the package's modules (function-level imports included), or None."""
    modules = source_modules()
    known = set(modules)
    graph = {m: sorted({d for _, t, _ in imports(p, known) for d in [t, *runs_on_import(t, m)] if d in known and d != m})
             for m, p in modules.items() if m != "anovit"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def fake_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / "anovit" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "anovit" / name).write_text(text)
    return root / "anovit"


def test_the_checker_names_a_violating_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself can fail: a runs module importing scoring is reported with file and line."""
    fake = fake_package(tmp_path, {"__init__.py": "from ._version import __version__\n", "_version.py": "",
                                   "runs/__init__.py": "", "scoring/__init__.py": "", "scoring/detector.py": "",
                                   "runs/catalog.py": "import os\n\nfrom ..scoring.detector import Detector\n"})
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert violations() == ["anovit/runs/catalog.py line 3: anovit.runs.catalog (layer runs, 3) imports "
                            "anovit.scoring.detector (layer scoring, 4)"]


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_package(tmp_path, {"__init__.py": "", "runs/__init__.py": "",
                                   "runs/catalog.py": "from . import lock\n",
                                   "runs/lock.py": "def f():\n    from .catalog import x\n"})
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert find_cycle() == ["anovit.runs.catalog", "anovit.runs.lock", "anovit.runs.catalog"]
