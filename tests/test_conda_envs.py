"""Every rule runs in a conda env from envs/ that has what its script imports.

With `--sdm conda` (the way to run on a cluster) each job runs its script in the rule's
env, where only the packages that env lists exist; the diffscale library is taken from
the clone (workflow/scripts/_helpers.py puts src/ on sys.path). A missing package only
shows up as an ImportError on a compute node, hours into a run, so this test follows
each rule's script through its diffscale imports and checks that the env lists every
third-party module it reaches.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SCRIPTS = REPO / "workflow" / "scripts"

# import name -> conda-forge package. Names not here are expected under their own name.
CONDA_NAME = {
    "yaml": "pyyaml",
    "ot": "pot",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "netCDF4": "netcdf4",
    "torch": "pytorch-gpu",
    "ESMF": "esmpy",
    "PIL": "pillow",
    "xarray_regrid": "xarray-regrid",
}
# Packages a module needs without importing them by name.
IMPLIED = {"xarray": {"netcdf4"}}  # xarray reads/writes the workflow's netCDF files with it


def _rules() -> list[dict]:
    """Rules of the Snakefile and workflow/rules/*.smk: name, file, conda, script, kind."""
    rules = []
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\s*)(?:rule|checkpoint) (\w+):", line)
            if not m:
                continue
            indent = len(m.group(1))
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                block.append(nxt)
            text = "\n".join(block)

            def directive(name: str) -> str | None:
                d = re.search(rf"^\s+{name}:\s*\n\s+[\"']([^\"']+)[\"']", text, re.M) or \
                    re.search(rf"^\s+{name}:\s*[\"']([^\"']+)[\"']", text, re.M)
                return d.group(1) if d else None

            kind = next((k for k in ("script", "shell", "notebook", "wrapper", "run")
                         if re.search(rf"^\s+{k}:", text, re.M)), None)
            rules.append({"name": m.group(2), "file": path, "conda": directive("conda"),
                          "script": directive("script"), "kind": kind})
    return rules


def _module_file(module: str) -> Path | None:
    """The file of a diffscale module or of a workflow script helper, else None."""
    parts = module.split(".")
    base = SRC if parts[0] == "diffscale" else SCRIPTS
    for cand in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if cand.is_file():
            return cand
    return None


def _optional(node: ast.AST, parents: dict) -> bool:
    """An import inside `try: ... except ImportError` or `if TYPE_CHECKING:`."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
            h.type is not None and any(n in ast.unparse(h.type) for n in ("ImportError", "ModuleNotFoundError"))
            for h in node.handlers
        ):
            return True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a script imports, following diffscale modules and
    local helpers (packages' __init__ included)."""
    seen: set[Path] = set()
    found: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        # Backends a module probes for with importlib.util.find_spec("name") are optional.
        probed = {node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("find_spec")
                  and node.args and isinstance(node.args[0], ast.Constant)}
        here = None
        if SRC in path.parents:
            rel = path.relative_to(SRC).with_suffix("")
            here = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import inside the library
                    pkg = (here or [])[: len(here or []) - (node.level - 1)]
                    mod = ".".join(pkg + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            if _optional(node, parents) or any(n.split(".")[0] in probed for n in names if n):
                continue
            for name in names:
                top = name.split(".")[0]
                if not top or top == "__future__" or top in sys.stdlib_module_names:
                    continue
                local = _module_file(name)
                if local is not None:
                    todo.append(local)
                    # importing a.b.c runs a/__init__ and a/b/__init__ first
                    parts = name.split(".")
                    for k in range(1, len(parts)):
                        init = _module_file(".".join(parts[:k]))
                        if init is not None:
                            todo.append(init)
                elif top != "diffscale" and _module_file(top) is None and top != "snakemake":
                    found.add(top)
    return found


def _env_packages(env: Path) -> set[str]:
    spec = yaml.safe_load(env.read_text())
    names = set()
    for dep in spec.get("dependencies", []):
        if isinstance(dep, str):
            names.add(re.split(r"[<>=!\s\[]", dep.split("::")[-1], maxsplit=1)[0].lower())
        elif isinstance(dep, dict):  # pip: [...] sub-list
            names |= {re.split(r"[<>=!\s\[]", d, maxsplit=1)[0].lower() for d in dep.get("pip", [])}
    return names


RULES = _rules()


def test_rules_found():
    assert {"make_synthetic", "plot_twin", "all"} <= {r["name"] for r in RULES}


@pytest.mark.parametrize("rule", [r for r in RULES if r["kind"] in {"script", "shell", "notebook"}],
                         ids=lambda r: r["name"])
def test_rule_has_conda_env_from_envs(rule):
    assert rule["conda"], f"rule {rule['name']} ({rule['file'].name}) has no conda: directive"
    env = (rule["file"].parent / rule["conda"]).resolve()
    assert env.parent == REPO / "envs" and env.is_file(), f"rule {rule['name']}: {rule['conda']} is not a file in envs/"
    spec = yaml.safe_load(env.read_text())
    assert spec.get("channels", [None])[0] == "conda-forge", f"{env.name}: conda-forge must come first"


@pytest.mark.parametrize("rule", [r for r in RULES if r["kind"] == "script"], ids=lambda r: r["name"])
def test_rule_env_has_what_its_script_imports(rule):
    script = (rule["file"].parent / rule["script"]).resolve()
    assert script.is_file(), f"rule {rule['name']}: script {rule['script']} not found"
    env = (rule["file"].parent / rule["conda"]).resolve()
    needed = set()
    for module in third_party_imports(script):
        needed.add(CONDA_NAME.get(module, module.lower().replace("_", "-")))
        needed |= IMPLIED.get(module, set())
    have = _env_packages(env)
    if "pytorch-gpu" in needed and "pytorch" in have:
        have.add("pytorch-gpu")
    missing = sorted(needed - have)
    assert not missing, (f"rule {rule['name']} runs {script.name} in envs/{env.name}, which lacks "
                         f"{missing} (imported by the script or the diffscale modules it uses)")


def test_import_tracer_follows_the_library(tmp_path):
    """The tracer reaches third-party imports through diffscale modules and inside
    functions, and leaves out optional ones (try/except ImportError, probed with
    find_spec): otherwise the test above proves nothing."""
    script = tmp_path / "s.py"
    script.write_text(
        "from _helpers import log_to\n"
        "from diffscale.data.sources.synthetic import make_twin\n"
        "try:\n    import xesmf\nexcept ImportError:\n    xesmf = None\n"
        "import importlib.util\n"
        "def regrid():\n    import esmpy\n    import torch\n"
        "HAVE_ESMPY = importlib.util.find_spec('esmpy') is not None\n"
    )
    found = third_party_imports(script)
    assert {"numpy", "scipy", "pandas", "xarray"} <= found  # via synthetic, io, grids
    assert "torch" in found  # a lazy import inside a function is still needed
    assert not {"xesmf", "esmpy", "diffscale", "_helpers"} & found  # optional / local
