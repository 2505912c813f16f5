"""The package layout: every import points down the layers, and installing bench takes no import name
but `bench` (datasets/ and baselines/ install as bench.datasets and bench.baselines)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

# Lower layers know nothing of higher ones; a folder is one layer. 0: what every layer shares (bench.core) and the
# measurements (bench.measure); 1: data sets; 2: the hand-built recipes (their command line loads data sets);
# 3: the systems that wrap recipes and libraries; 4: the harness (bench.run), the report and the command line.
LAYERS = {"bench.core": 0, "bench.measure": 0, "bench.datasets": 1, "bench.baselines": 2, "bench.systems": 3,
          "bench.run": 4, "bench.report": 4}
# Modules that sit directly in bench/: the package itself (no imports), the command line, the suites' files.
TOP = {"bench": 0, "bench.cli": 4, "bench.__main__": 4, "bench.suites": 4}
FOLDERS = {"bench": "bench", "datasets": "bench.datasets", "baselines": "bench.baselines"}


def layer(module: str) -> int:
    if module in TOP:
        return TOP[module]
    for package, rank in LAYERS.items():
        if module == package or module.startswith(package + "."):
            return rank
    raise AssertionError(f"{module} sits in no layer's folder: move it into one of {', '.join(LAYERS)}")


def project_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules[name] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import name` imports the module package.name when there is one, else package.
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return {name for name in found if name == "bench" or name.startswith("bench.")}


def upward_imports(modules: dict[str, Path]) -> list[str]:
    """Every import of a module from a higher layer than the importer's."""
    upward = []
    for module, path in sorted(modules.items()):
        for target in sorted(imports_of(path, modules)):
            if layer(target) > layer(module):
                upward.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})")
    return upward


def test_every_module_sits_in_a_layer_folder() -> None:
    modules = project_modules()
    loose = sorted(m for m in modules if m not in TOP and not any(m == p or m.startswith(p + ".") for p in LAYERS))
    assert not loose, f"modules outside the layer folders: {loose}"


def test_every_import_points_down_the_layers() -> None:
    modules = project_modules()
    assert "bench.datasets.cifar10" in modules and "bench.baselines.cifar10" in modules
    upward = upward_imports(modules)
    assert not upward, "\n".join(upward)


def test_the_layer_rule_catches_an_upward_import(tmp_path: Path) -> None:
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from bench.systems import make_system\n")
    plain = tmp_path / "plain.py"
    plain.write_text("from bench.core import rundir, options\nimport bench.datasets.base\n")
    found = upward_imports({"bench.datasets.lazy": lazy, "bench.baselines.plain": plain,
                            "bench.core.rundir": plain, "bench.core.options": plain})
    assert found == ["bench.core.options (layer 0) imports bench.datasets.base (layer 1)",
                     "bench.core.rundir (layer 0) imports bench.datasets.base (layer 1)",
                     "bench.datasets.lazy (layer 1) imports bench.systems (layer 3)"]


def test_imports_between_test_files(tmp_path: Path) -> None:
    """Tests share helpers through conftest or a helpers module, never by importing another test file: a test file
    is no interface, and one that imports another breaks when that one's tests move or change."""

    def test_modules_imported(path: Path) -> list[str]:
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names += [a.name for a in node.names]
        return sorted({n for n in names if n.startswith("tests.") and n.rsplit(".", 1)[-1].startswith("test_")})

    found = {str(path.relative_to(REPO)): hit for path in (REPO / "tests").rglob("*.py")
             if (hit := test_modules_imported(path))}
    assert not found, f"test files importing test files (move what they share to a helpers module): {found}"
    bad = tmp_path / "test_b.py"
    bad.write_text("from tests.bench.systems.test_autogluon import FakeToolkit\n")
    assert test_modules_imported(bad) == ["tests.bench.systems.test_autogluon"]


def test_a_regular_install_provides_bench_datasets_and_takes_no_other_name(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO)], check=True, capture_output=True)
    [wheel] = wheels.glob("bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"bench", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "bench/datasets/cifar10.py" in names and "bench/baselines/cifar10.py" in names
    assert "bench/suites/smoke.toml" in names
    assert "bench/systems/search/tuner.py" in names and "bench/run/search_worker.py" in names  # every package
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import importlib.util as u, bench.datasets as d, bench.baselines as b; "
            "print(d.__file__); print(b.__file__); print(u.find_spec('datasets'), u.find_spec('baselines'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert out[0].startswith(str(site)) and out[1].startswith(str(site))
    assert out[2] == "None None"


def test_outside_the_repository_import_datasets_finds_nothing_of_this_project(tmp_path: Path) -> None:
    """The editable install (the README's) maps bench.datasets without a top-level `datasets`."""
    code = ("import importlib.util as u, bench.datasets; print(u.find_spec('datasets'), u.find_spec('baselines')); "
            "print(bench.datasets.__file__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tests' own path holds the repository
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env=env).stdout.splitlines()
    assert out[0] == "None None"
    assert out[1] == str(REPO / "datasets" / "__init__.py")
