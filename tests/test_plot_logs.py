"""scripts/plot_logs.py reads our logs and the original's (numbers as "%.4f" strings) and draws a PNG."""

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import plot_logs  # noqa: E402


def write_run(folder, original_format):
    folder.mkdir()
    fmt = (lambda v: f"{v:.4f}") if original_format else (lambda v: v)
    for split, bits in (("train", [6.0, 5.0, 4.5]), ("test", [5.5, 4.8])):
        lines = [json.dumps({"problem": "cifar10", "depth": 32})]
        lines += [json.dumps({"epoch": i + 1, "n_processed": 64 * (i + 1), "n_images": 64 * (i + 1),
                              "loss": fmt(b), "bits_x": fmt(b)}) for i, b in enumerate(bits)]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return str(folder)


def test_reads_both_formats_and_plots(tmp_path):
    ours, theirs = write_run(tmp_path / "ours", False), write_run(tmp_path / "openai", True)
    assert [r["bits_x"] for r in plot_logs.read_log(os.path.join(theirs, "test.txt"))] == [5.5, 4.8]
    out = tmp_path / "curves.png"
    assert plot_logs.main([ours, theirs, "--output", str(out), "--x", "epoch"]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 300 and len(np.unique(np.asarray(im.convert("L")))) > 10


def test_bad_input(tmp_path, capsys):
    assert plot_logs.main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot_logs.main([str(empty)]) == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text("{not json\n")
    assert plot_logs.main([str(bad)]) == 2
    assert "bad/train.txt:1: not a JSON line" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_logs.main([str(empty), "--labels", "a", "b"])
