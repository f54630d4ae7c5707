"""The house's layout: layers, no import circle, rooms of one job.

The layers are those of docs/layout.md: a module may import its own layer
and those below, never one above, and no chain of imports (module-level or
inside a function) leads back to where it started.
"""

import ast
import os

import pytest

from tests.helpers import ROOT

# Installed package of each top-level folder of the repository.
PACKAGES = {"dim_keras": "dim_keras", "apps": "dim_keras.apps",
            "tuning": "dim_keras.tuning"}

# Module name prefixes (without `dim_keras.`), lowest layer first.
LAYERS = (
    ("version", "choices", "checks", "recipes", "atomic"),
    ("estimators", "objective", "networks", "progress", "flops", "backend",
     "distribute", "learning_rate"),
    ("data",),
    ("config",),
    ("encoder_file", "runs", "run_lock", "export"),
    ("predictions", "view_schemes", "symbolic", "online_probe",
     "prior_matching"),
    ("model", "evaluation", "online_monitors", "monitors"),
    ("build", "checkpointing", "modalities"),
    ("training",),
    ("tuning",),
    ("apps",),
)
MAX_LINES = 500


def _modules():
    """`{module name: path}` of every module of the installed packages."""
    modules = {}
    for folder, package in PACKAGES.items():
        for directory, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, os.path.join(ROOT, folder))
                parts = relative[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join([package] + parts)] = path
    return modules


def _imports(modules):
    """`{module: set of dim_keras modules it imports}`, lazy ones too."""
    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = owner(name) if name.startswith("dim_keras") else ""
                # A package's own modules may import it (its __init__).
                if target and target != module and not module.startswith(
                        target + "."):
                    targets.add(target)
        graph[module] = targets
    return graph


def _layer(module):
    short = module[len("dim_keras."):] if module != "dim_keras" else ""
    if not short:
        return -1  # the package's __init__: imports on first use only
    for rank, prefixes in enumerate(LAYERS):
        if any(short == p or short.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of docs/layout.md")


def _upward(graph):
    """The imports of a module from a layer above its own."""
    return [f"{m} -> {t}" for m, targets in sorted(graph.items())
            for t in sorted(targets) if _layer(t) > _layer(m) >= 0]


def _circles(graph):
    """Chains of imports that come back to their start."""
    circles = []
    state = {}  # module: "open" while on the path, "done" after

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


@pytest.fixture(scope="module")
def graph():
    return _imports(_modules())


def test_every_module_has_a_layer_and_imports_none_above_it(graph):
    assert _upward(graph) == []


def test_no_chain_of_imports_comes_back_to_its_start(graph):
    assert _circles(graph) == []


def test_the_checks_find_a_circle_and_an_upward_import():
    circle = {"dim_keras.evaluation.a": {"dim_keras.evaluation.b"},
              "dim_keras.evaluation.b": {"dim_keras.evaluation.a"}}
    assert _circles(circle) == [["dim_keras.evaluation.a",
                                 "dim_keras.evaluation.b",
                                 "dim_keras.evaluation.a"]]
    assert _upward({"dim_keras.config": {"dim_keras.training"}}) == [
        "dim_keras.config -> dim_keras.training"]


def test_no_module_is_longer_than_a_room_of_one_job():
    long = {}
    for module, path in _modules().items():
        with open(path) as f:
            lines = sum(1 for _ in f)
        if lines > MAX_LINES:
            long[module] = lines
    assert long == {}
