"""The layout holds: imports point one way with no cycle, modules stay small, and the docs name only what exists.

* Import graph (every ``import`` in offchain/ and protocol/, function-level ones included): no cycle; offchain never
  imports protocol; neither product imports the other (inference <-> campaign), off chain or on chain.
* No Python module of the product packages over `MAX_LINES` lines.
* Every backticked repository path (``contracts/...``, ``offchain/...``, ...) and every backticked dotted name
  (``offchain.inference.merkle.Tree``) in the README, the docs, the docstrings and comments of Python and Solidity
  files exists.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("offchain", "protocol")
MAX_LINES = 450
PRODUCTS = ("inference", "campaign")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


def _imports(mod: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
        else:
            continue
        for n in names:
            r = _resolve(n)
            if r and r != mod:
                found.add(r)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _product(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PRODUCTS else None


def test_offchain_never_imports_protocol():
    bad = [(m, d) for m, ds in GRAPH.items() if m.startswith("offchain") for d in ds if d.startswith("protocol")]
    assert not bad, bad


def test_products_do_not_import_each_other():
    bad = [(m, d) for m, ds in GRAPH.items() for d in ds
           if _product(m) and _product(d) and _product(m) != _product(d)]
    assert not bad, bad


def test_no_import_cycle():
    """Tarjan's strongly connected components over the module graph (parent packages excluded: importing a
    submodule runs its package's __init__, which here holds no imports)."""
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not sccs, f"import cycles: {sccs}"


def test_modules_are_small():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


# ------------------------------------------------------------------------------------------------------- docs

_TOP = ("contracts", "offchain", "protocol", "deploy", "tests", "benchmarks", ".ci")
_PATH = re.compile(r"`((?:%s)/[A-Za-z0-9_./-]*|README\.md|Makefile|pyproject\.toml|package\.json)`" % "|".join(
    re.escape(t) for t in _TOP))
_DOTTED = re.compile(r"`((?:offchain|protocol)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def _doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*.md")), *sorted((ROOT / "offchain").rglob("*.md"))]
    for top in ("offchain", "protocol", "contracts", "tests", "benchmarks"):
        files += sorted((ROOT / top).rglob("*.py")) + sorted((ROOT / top).rglob("*.sol"))
    return [f for f in files if f.exists() and f.name != "test_architecture.py"]


def _refs():
    for f in _doc_files():
        text = f.read_text()
        for m in _PATH.finditer(text):
            yield f, "path", m.group(1)
        for m in _DOTTED.finditer(text):
            yield f, "name", m.group(1)


def _name_exists(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        mod = ".".join(parts[:i])
        if mod in MODULES:
            obj = importlib.import_module(mod)
            for attr in parts[i:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


def test_docs_name_only_what_exists():
    missing = []
    for f, kind, ref in _refs():
        where = f.relative_to(ROOT)
        if kind == "path":
            if (ROOT / ref.rstrip("/")).exists():
                continue
            missing.append(f"{where}: `{ref}`")
        elif not _name_exists(ref):
            missing.append(f"{where}: `{ref}`")
    assert not missing, "docs name things that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_the_docs_check_can_fail(tmp_path):
    """The reference finder sees a wrong path and a wrong dotted name."""
    text = "see `contracts/lib/Ops.sol` and `offchain.model.load`"
    assert [m.group(1) for m in _PATH.finditer(text)] == ["contracts/lib/Ops.sol"]
    assert not (ROOT / "contracts/lib/Ops.sol").exists()
    assert not _name_exists("offchain.model.load")
    assert _name_exists("offchain.common.hashing.keccak")


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_module_imports(pkg):
    for m in MODULES:
        if m.startswith(pkg) and not m.endswith("__main__"):
            importlib.import_module(m)
