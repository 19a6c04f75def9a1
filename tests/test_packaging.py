"""`pip install .` installs what the packages import: pyproject.toml declares requirements.txt, and every
third-party module the packages import comes from a declared distribution, but for the two that
`make install` installs itself (TensorFlow, whose package depends on the machine, and Horovod, built from
source)."""

import ast
import importlib.metadata
import os
import re
import sys

from tests.runs import ROOT

PACKAGES = ("glow_common", "glow_tf", "data_loaders", "tfrecords_tools")
INSTALLED_BY_MAKE = {"tensorflow", "horovod"}


def requirement_names(text):
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_the_installed_project_declares_every_requirement():
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        wanted = requirement_names(f.read())
    declared = requirement_names("\n".join(importlib.metadata.requires("glow-tf") or []))
    assert wanted and declared == wanted


def test_every_imported_distribution_is_declared_or_installed_by_make():
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        declared = requirement_names(f.read())
    providers = importlib.metadata.packages_distributions()
    ours = set(PACKAGES) | {"train"}
    undeclared = set()
    for package in PACKAGES:
        for base, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(base, name)) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                        [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                    for module in modules:
                        top = module.split(".")[0]
                        if top in ours or top in sys.stdlib_module_names or top in INSTALLED_BY_MAKE:
                            continue
                        dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
                        if module.startswith("google.protobuf"):
                            dists = {"protobuf"}
                        if not dists & declared:
                            undeclared.add(f"{os.path.relpath(os.path.join(base, name), ROOT)}: {module} "
                                           f"({', '.join(sorted(dists))})")
    assert not undeclared, sorted(undeclared)
