"""Architecture rules, checked on the source: models and tasks never import each other,
types import nothing from mmbench, and no module has import-time side effects we forbid."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "mmbench"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_models_never_import_tasks():
    offenders = {str(p.relative_to(PKG)): sorted(m for m in _imports(p) if m.startswith("mmbench.tasks"))
                 for p in _modules("models")}
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_tasks_never_import_models():
    offenders = {str(p.relative_to(PKG)): sorted(m for m in _imports(p) if m.startswith("mmbench.models"))
                 for p in _modules("tasks")}
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_metrics_import_neither_models_nor_tasks_nor_runner():
    for p in _modules("metrics"):
        bad = [m for m in _imports(p) if m.startswith(("mmbench.models", "mmbench.tasks", "mmbench.runner",
                                                        "mmbench.catalog", "torch", "transformers"))]
        assert not bad, (p, bad)


def test_tasks_never_import_the_catalog():
    """Tasks reach metrics through mmbench.metrics.registry; the catalog builds tasks, not the reverse."""
    offenders = {str(p.relative_to(PKG)): sorted(m for m in _imports(p) if m.startswith("mmbench.catalog"))
                 for p in _modules("tasks")}
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_types_import_nothing_from_the_package():
    assert not [m for m in _imports(PKG / "types.py") if m.startswith("mmbench")]


def test_no_unsafe_calls():
    """No eval/exec of data, no pickle loading, YAML only through safe_load."""
    for p in PKG.rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name):  # builtins eval/exec (model.eval() is torch's, fine)
                    assert fn.id not in {"eval", "exec"}, f"{p}: {fn.id}()"
                if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                    assert not (fn.value.id == "yaml" and fn.attr in {"load", "unsafe_load", "full_load"}), p
                    assert not (fn.value.id == "pickle" and fn.attr in {"load", "loads"}), p
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert not (isinstance(node.value, ast.Constant) and node.value.value is True), p


def test_detector_sees_a_violation(tmp_path):
    """The checks above are not vacuous: a file importing a task from a model is caught."""
    bad = tmp_path / "m.py"
    bad.write_text("from mmbench.tasks.captioning import CaptioningTask\nimport mmbench.tasks.base\n")
    assert {"mmbench.tasks.captioning", "mmbench.tasks.base"} <= _imports(bad)
