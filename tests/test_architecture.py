"""The packages stack one way (docs/architecture.md): no module imports a layer above its own.

Every import statement counts, including the ones inside functions, so a "lazy" upward import fails too.
"""

import ast
import os

import pytest

from tests.runs import ROOT

# Each layer and the top-level names it must not import. glow_common, at the bottom, is the neutral home of
# what every package shares: the error contract of the commands (glow_common/errors.py) and writing files
# atomically, with a failed write as one WriteError (glow_common/files.py).
FORBIDDEN = {
    "glow_common": ("tfrecords_tools", "data_loaders", "glow_tf", "train", "tensorflow", "numpy"),
    "tfrecords_tools": ("data_loaders", "glow_tf", "train"),
    "data_loaders": ("glow_tf", "train"),
    "glow_tf": ("glow_tf.training", "glow_tf.tools", "train"),  # the model core
    "glow_tf/training": ("glow_tf.tools", "train"),
    "glow_tf/tools": ("train",),
    "bench": ("train",),
}


def modules(folder):
    """The .py files of a layer (for the core, glow_tf/ without its subpackages)."""
    root = os.path.join(ROOT, folder)
    if folder == "glow_tf":
        return [os.path.join(root, n) for n in sorted(os.listdir(root)) if n.endswith(".py")]
    return [os.path.join(base, n) for base, _, names in os.walk(root) for n in sorted(names) if n.endswith(".py")]


def imported(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(layer):
    offending = []
    for path in modules(layer):
        for name in imported(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offending.append(f"{os.path.relpath(path, ROOT)} imports {name}")
    assert not offending, offending
    assert modules(layer), f"no modules found in {layer}"


def test_train_py_stays_a_thin_command():
    with open(os.path.join(ROOT, "train.py")) as f:
        assert len(f.read().splitlines()) < 200


@pytest.mark.parametrize("module", ["glow_common.errors", "glow_common.files", "glow_tf", "glow_tf.hparams",
                                    "glow_tf.flags", "data_loaders", "data_loaders.problems", "data_loaders.images",
                                    "tfrecords_tools.format", "tfrecords_tools.verify", "tfrecords_tools.celeba",
                                    "tfrecords_tools.writer", "tfrecords_tools.images"])
def test_what_describes_a_model_or_a_format_imports_no_tensorflow(module):
    """Reading flags, presets, the problem registry or the TFRecord format, or starting a converter (whose
    worker processes import it again), costs no TensorFlow import (and does not change TF's environment
    variables)."""
    import subprocess
    import sys

    probe = (f"import os, sys; before = dict(os.environ); import {module}; "
             "print('tensorflow' in sys.modules, dict(os.environ) == before)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"], result.stdout


def test_the_atomic_write_is_defined_once_in_glow_common():
    """glow_common/files.py is the one atomic write (temporary name, fsync, rename) and the one place that
    turns a failed write into a WriteError: no other module defines either."""
    definitions = []
    for layer in ("glow_common", "tfrecords_tools", "data_loaders", "glow_tf", "bench", "scripts"):
        for path in modules(layer) if layer != "glow_tf" else modules("glow_tf/training") + modules("glow_tf/tools") \
                + modules("glow_tf"):
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name in ("atomic_path", "write_error", "write_bytes"):
                    definitions.append(f"{os.path.relpath(path, ROOT)}:{node.name}")
                if isinstance(node, ast.Attribute) and node.attr == "fsync":
                    definitions.append(f"{os.path.relpath(path, ROOT)}:fsync")
    assert sorted(definitions) == ["glow_common/files.py:atomic_path", "glow_common/files.py:fsync",
                                   "glow_common/files.py:write_bytes", "glow_common/files.py:write_error"]
