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


def write_seed_run(root, name, test_bits, final, se=0.01, n_images=500):
    """A run folder <name> with a test.txt of the given validations, and <name>_eval.json beside it."""
    folder = root / name
    folder.mkdir()
    lines = [json.dumps({"problem": "fashion_mnist"})]
    lines += [json.dumps({"epoch": i + 1, "n_images": 100 * (i + 1), "bits_x": b}) for i, b in enumerate(test_bits)]
    (folder / "test.txt").write_text("\n".join(lines) + "\n")
    (root / f"{name}_eval.json").write_text(json.dumps({"bits_x": final, "se_images": se, "n_images": n_images}))
    return str(folder)


def test_seeds_are_grouped_banded_and_tabled(tmp_path, capsys):
    import ablation_table

    rng = np.random.default_rng(3)
    curves = {(cell, seed): rng.uniform(3, 6, size=4) for cell in ("a_additive", "a_affine") for seed in (0, 1, 2)}
    finals = {key: float(rng.uniform(3, 6)) for key in curves}
    dirs = [write_seed_run(tmp_path, f"{cell}_s{seed}", list(bits), finals[cell, seed], se=0.01 * (seed + 1))
            for (cell, seed), bits in curves.items()]
    # an extra, shorter seed: the band only covers the x values every seed reached
    dirs.append(write_seed_run(tmp_path, "a_affine_s7", [5.0, 4.0], 4.5))
    groups = plot_logs.group_seeds(dirs)
    assert list(groups) == ["a_additive", "a_affine"] and sorted(groups["a_affine"]) == [0, 1, 2, 7]

    tests = [plot_logs.load_run(groups["a_affine"][s])["test"] for s in (0, 1, 2, 7)]
    x, mean, low, high = plot_logs.seed_band(tests, "n_images")
    stacked = np.array([curves["a_affine", s][:2] for s in (0, 1, 2)] + [[5.0, 4.0]])
    assert x == [100, 200]
    np.testing.assert_allclose(mean, stacked.mean(0))
    np.testing.assert_allclose(low, stacked.min(0))
    np.testing.assert_allclose(high, stacked.max(0))

    out = tmp_path / "seeds.png"
    assert plot_logs.main(["--seeds", *dirs[:6], "--panels", "additive", "affine", "--output", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 2 * im.size[1] * 0.9  # two panels side by side

    assert ablation_table.main(dirs[:6]) == 0
    rows = {line.split(" | ")[0].strip("| "): line for line in capsys.readouterr().out.splitlines()}
    f = np.array([finals["a_additive", s] for s in (0, 1, 2)])
    late = np.array([curves["a_additive", s][-3:].mean() for s in (0, 1, 2)])
    assert f"{f.mean():.3f} ± {f.std(ddof=1):.3f}" in rows["a_additive"]
    assert ", ".join(f"{v:.3f} (s{s})" for s, v in enumerate(f)) in rows["a_additive"]
    assert "| 0.0200 |" in rows["a_additive"]  # mean of the seeds' standard errors 0.01, 0.02, 0.03
    assert f"{late.mean():.3f} ± {late.std(ddof=1):.3f}" in rows["a_additive"]


def test_seeds_bad_input(tmp_path, capsys):
    import ablation_table

    plain = write_run(tmp_path / "run", False)
    assert plot_logs.main(["--seeds", plain]) == 2
    assert "must end in _s<seed>" in capsys.readouterr().err
    run = write_seed_run(tmp_path, "cell_s0", [5.0, 4.0, 3.5], 3.4)
    assert plot_logs.main(["--seeds", run, "--panels", "affine"]) == 2
    assert "--panels 'affine': no run group has it" in capsys.readouterr().err
    os.remove(tmp_path / "cell_s0_eval.json")
    assert ablation_table.main([run]) == 2
    assert "cell_s0_eval.json is missing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_logs.main([run, "--panels", "a"])
