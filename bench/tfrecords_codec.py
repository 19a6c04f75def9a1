"""The TFRecord codec before and after protobuf and google-crc32c: encode, decode, CRC, verify, two converters.

"Before" is another version of the tfrecords_tools package (the hand-written varint codec and table-driven
CRC-32C, with TensorFlow's reader in verify and TensorFlow's writer in the converters), given with
--baseline as a folder holding a `tfrecords_tools/` or as a git revision, which is extracted with
`git archive`. "After" is this checkout. Each repetition measures every row for both, the order
alternating from one repetition to the next, so both figures of a row come from the same minutes of a
shared machine.

Rows, on real photos (foolbox's ImageNet samples, centre-cropped and resized):
  encode / decode   records per second and MB/s of serialized records, in this process: a CelebA-HQ
                    record (256x256x3 pixels, label, 40 attributes, 196 KB) and a 32x32x3 record
  masked CRC-32C    MB/s over one 196 KB record
  verify            `python -m tfrecords_tools.verify FOLDER` on one record (the command's start-up, s), and
                    on 256 CelebA-HQ records in 4 shards (50 MB): MB/s of shard files over its wall time
  images, celeba    `python -m tfrecords_tools.images` from 48 JPEG photos, `python -m tfrecords_tools.celeba`
                    from a PGGAN-style TFRecord of 48 CelebA-HQ-sized records (each record's checksums
                    checked as it is read), to 256, 128 and 64 px: images per second of the command's wall
                    time (--workers 0: one process)

    python bench/tfrecords_codec.py --baseline c50bfdc
    python bench/tfrecords_codec.py --baseline /tmp/codec_before --reps 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tfrecords_tools import format as after_fmt  # noqa: E402
from tfrecords_tools.imaging import Spec, process  # noqa: E402

N_VERIFY, VERIFY_SHARDS, N_CONVERT = 256, 4, 48


def baseline_folder(value: str, scratch: str) -> str:
    """A folder holding the baseline's tfrecords_tools/: `value` itself, or `value` extracted from git."""
    if os.path.isdir(os.path.join(value, "tfrecords_tools")):
        return os.path.abspath(value)
    folder = os.path.join(scratch, "baseline")
    os.makedirs(folder)
    archive = subprocess.run(["git", "-C", ROOT, "archive", value, "tfrecords_tools"], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"--baseline {value}: neither a folder holding tfrecords_tools/ nor a git revision "
                         f"({archive.stderr.decode().strip()})")
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return folder


def load_format(folder: str):
    """The baseline's format.py as a module of its own (its imports resolve in this checkout, whose
    tfrecords_tools.errors and glow_common it shares)."""
    spec = importlib.util.spec_from_file_location("baseline_format", os.path.join(folder, "tfrecords_tools",
                                                                                  "format.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def photo_files() -> list:
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        raise SystemExit("foolbox's sample images are needed (make install adds them)")
    folder = os.path.join(spec.submodule_search_locations[0], "data")
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.startswith("imagenet_")]


def photos(size: int) -> list:
    out = []
    for path in photo_files():
        with Image.open(path) as img:
            out.append(process(np.asarray(img.convert("RGB")), Spec("square", size)).pop(0))
    return out


def timed(fn, min_seconds: float) -> tuple:
    """(calls, seconds) of calling fn until at least min_seconds have passed."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls, elapsed


def command_seconds(pythonpath: str, argv: list, cwd: str) -> float:
    """Wall seconds of `python -m argv` with its package from `pythonpath` (run from `cwd`, a folder
    holding no package: Python puts the working folder first on its path)."""
    env = dict(os.environ, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise SystemExit(f"{' '.join(argv[:1])} failed ({lines[-1] if lines else result.returncode})")
    return elapsed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, help="folder holding the old tfrecords_tools/, or a git revision")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="time per in-process row and side (default 1)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        base = baseline_folder(args.baseline, scratch)
        sides = {"before": (load_format(base), os.pathsep.join([base, ROOT])), "after": (after_fmt, ROOT)}
        big, small = photos(256)[0], photos(32)[0]
        attr = [1, -1] * 20
        record = after_fmt.encode_example(big.shape, big.tobytes(), 3, attr)
        small_record = after_fmt.encode_example(small.shape, small.tobytes(), 3)

        # The verify set (written by this checkout; both versions read the same bytes) and the converter's input.
        verify_dir = os.path.join(scratch, "verify")
        folder = os.path.join(verify_dir, "train")
        os.makedirs(folder)
        images = photos(256)
        for s in range(VERIFY_SHARDS):
            with open(os.path.join(folder, after_fmt.shard_name("train", 8, s, VERIFY_SHARDS)), "wb") as f:
                for i in range(s, N_VERIFY, VERIFY_SHARDS):
                    image = images[i % len(images)]
                    f.write(after_fmt.frame(after_fmt.encode_example(image.shape, image.tobytes(), 0, attr)))
        verify_mb = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)) / 1e6
        one_dir = os.path.join(scratch, "one", "train")  # one record: the command's start-up
        os.makedirs(one_dir)
        with open(os.path.join(one_dir, after_fmt.shard_name("train", 5, 0, 1)), "wb") as f:
            f.write(after_fmt.frame(small_record))
        photos_dir = os.path.join(scratch, "photos")
        os.makedirs(photos_dir)
        files = photo_files()
        for i in range(N_CONVERT):
            with Image.open(files[i % len(files)]) as img:
                img.convert("RGB").save(os.path.join(photos_dir, f"{i:04d}.jpg"), quality=95)
        pggan = os.path.join(scratch, "celebahq-r08.tfrecords")  # PGGAN's dataset_tool layout: CHW, no label
        with open(pggan, "wb") as f:
            for i in range(N_CONVERT):
                chw = images[i % len(images)].transpose(2, 0, 1)
                f.write(after_fmt.frame(after_fmt.encode_example(chw.shape, chw.tobytes(), None, attr)))

        def rows(fmt, pythonpath):
            check = [sys.executable, "-c", "import tfrecords_tools; print(tfrecords_tools.__file__)"]
            where = subprocess.run(check, capture_output=True, text=True, cwd=scratch,
                                   env=dict(os.environ, PYTHONPATH=pythonpath)).stdout.strip()
            expected = os.path.join(pythonpath.split(os.pathsep)[0], "tfrecords_tools", "__init__.py")
            assert where == expected, f"the commands would run {where}, not {expected}"
            out = {}
            calls, sec = timed(lambda: fmt.encode_example(big.shape, big.tobytes(), 3, attr), args.seconds)
            out["encode 256x256x3 (MB/s)"] = calls * len(record) / sec / 1e6
            calls, sec = timed(lambda: fmt.encode_example(small.shape, small.tobytes(), 3), args.seconds)
            out["encode 32x32x3 (records/s)"] = calls / sec
            calls, sec = timed(lambda: fmt.decode_example(record), args.seconds)
            out["decode 256x256x3 (MB/s)"] = calls * len(record) / sec / 1e6
            calls, sec = timed(lambda: fmt.decode_example(small_record), args.seconds)
            out["decode 32x32x3 (records/s)"] = calls / sec
            calls, sec = timed(lambda: fmt.masked_crc32c(record), args.seconds)
            out["masked CRC-32C (MB/s)"] = calls * len(record) / sec / 1e6
            start_up = command_seconds(pythonpath, ["tfrecords_tools.verify", os.path.dirname(one_dir)], scratch)
            full = command_seconds(pythonpath, ["tfrecords_tools.verify", verify_dir], scratch)
            out["verify, 1 record (s)"] = start_up
            out[f"verify, {verify_mb:.0f} MB (MB/s)"] = verify_mb / full
            common = ["--resolution", "256", "--lods", "2", "--workers", "0", "--quiet", "--overwrite"]
            sec = command_seconds(pythonpath, ["tfrecords_tools.images", "--input", photos_dir, "--output",
                                               os.path.join(scratch, "converted"), *common], scratch)
            out[f"images, {N_CONVERT} JPEGs (img/s)"] = N_CONVERT / sec
            sec = command_seconds(pythonpath, ["tfrecords_tools.celeba", "--input", pggan, "--output",
                                               os.path.join(scratch, "celeba"), "--n_validation", "8",
                                               "--shards", "1", *common], scratch)
            out[f"celeba, {N_CONVERT} records (img/s)"] = N_CONVERT / sec
            return out

        results = {"before": [], "after": []}
        for rep in range(args.reps):
            for side in (("before", "after") if rep % 2 == 0 else ("after", "before")):
                results[side].append(rows(*sides[side]))
            print(f"repetition {rep + 1} of {args.reps} done", file=sys.stderr, flush=True)

    print(f"\nTFRecord codec, before ({args.baseline}) and after (this checkout), {args.reps} interleaved "
          f"repetitions, {os.cpu_count()} CPU cores")
    print(f"verify: {N_VERIFY} records of 256x256x3 in {VERIFY_SHARDS} shards ({verify_mb:.1f} MB), and a set of "
          f"one record; converters (--workers 0): {N_CONVERT} JPEG photos (images) or PGGAN-style 256x256 "
          f"records (celeba) to 256, 128 and 64 px")
    print(f"| {'row':<32} | {'before (median)':>15} | {'after (median)':>14} | {'speed-up, per repetition':<30} |")
    print(f"|{'-' * 34}|{'-' * 16}:|{'-' * 15}:|{'-' * 32}|")
    for name in results["before"][0]:
        before = [r[name] for r in results["before"]]
        after = [r[name] for r in results["after"]]
        lower_is_better = name.endswith("(s)")
        ups = [b / a if lower_is_better else a / b for a, b in zip(after, before)]
        ups_text = ", ".join(f"{u:.0f}" if u >= 100 else f"{u:.1f}" for u in ups)
        print(f"| {name:<32} | {statistics.median(before):>15.1f} | {statistics.median(after):>14.1f} | "
              f"{ups_text:<30} |")

if __name__ == "__main__":
    main()
