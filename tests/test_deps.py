"""elim.deps: the packages imported under another name than they are installed by, in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from elim import deps
from elim.errors import ElimError

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}


def test_every_distribution_is_a_declared_dependency():
    assert set(deps.DISTRIBUTIONS.values()) <= _declared()
    assert {module.partition(".")[0] for module, _ in deps.NAMES.values()} == set(deps.DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(deps.NAMES))
def test_every_name_resolves(name):
    module, attribute = deps.NAMES[name]
    value = getattr(deps, name)
    assert value is not None
    assert (value.__name__ == module) if attribute is None else (value.__name__ == attribute)


def test_no_other_module_imports_them_directly():
    """One home: src/ and tests/ import these packages through elim.deps only."""
    direct = []
    for base in ("src", "tests"):
        for path in (ROOT / base).rglob("*.py"):
            if path.name == "deps.py" and path.parent.name == "elim":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         and node.level == 0 else [])
                direct += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names
                           if n.partition(".")[0] in deps.DISTRIBUTIONS]
    assert direct == []


def test_unknown_names_and_missing_packages(monkeypatch):
    with pytest.raises(AttributeError, match="no attribute 'numpy'"):
        deps.numpy  # noqa: B018
    monkeypatch.setitem(deps.NAMES, "absent", ("elim_absent_package.sub", None))
    monkeypatch.setitem(deps.DISTRIBUTIONS, "elim_absent_package", "absent-dist")
    with pytest.raises(ElimError, match=r"absent-dist \(import elim_absent_package\).*"
                                        r"pip install absent-dist"):
        deps.absent  # noqa: B018
