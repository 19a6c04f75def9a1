"""How long the demo's answers take on a model: the directions once, then each kind of request.

    python bench/demo.py [LOGDIR]        # default logs/fashion_small, the model of `make train`

Computes the class directions from scratch (into a temporary cache, 3 times) and then times every
endpoint through Flask's test client: 3 rounds, each running every request kind 20 times in turn, so
that a slow moment of a shared machine hits all kinds alike. Prints medians over all rounds.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from glow_tf.tools.demo import server  # noqa: E402
from glow_tf.training.checkpoints import load_model  # noqa: E402
from tests.data_fixtures import samples  # noqa: E402

ROUNDS, REPEATS = 3, 20


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def main(logdir: str) -> None:
    model, hps, prefix = load_model(logdir)
    demo = server.build(model, hps, prefix, checkpoint=logdir, start=False)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for i in range(ROUNDS):
            demo.job.path = os.path.join(tmp, f"{i}.npz")
            start = time.perf_counter()
            demo.job.run()
            times.append(time.perf_counter() - start)
        status = demo.job.status()
    print(f"model {prefix}: {hps.image_shape}, {hps.n_levels} levels x {hps.depth} steps, width {hps.width}")
    print(f"directions: {status['message']}; {np.median(times):.1f} s (median of {ROUNDS}: "
          f"{', '.join(f'{t:.1f}' for t in times)}), {status['total'] / np.median(times):.0f} images/s\n")

    client = server.create_app(demo).test_client()
    png, other, jpeg = (read(samples(name)[i][0]) for name, i in (("fashionMNIST", 0), ("fashionMNIST", 1),
                                                                   ("imagenet", 0)))

    def upload(data, name):
        return client.post("/api/upload", data={"image": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    first = upload(png, "a.png").get_json()
    second = upload(other, "b.png").get_json()
    name = demo.job.names[0]

    def post(path, body):
        return client.post(path, data=json.dumps(body), content_type="application/json")

    kinds = {
        "upload 28x28 PNG (z cached)": lambda: upload(png, "a.png"),
        f"upload {len(jpeg) // 1024} KB JPEG (z cached)": lambda: upload(jpeg, "b.jpg"),
        "reconstruct (z cached)": lambda: post("/api/reconstruct", {"image": first["image"]}),
        "manipulate (one slider)": lambda: post("/api/manipulate", {"image": first["image"], "alphas": {name: 0.5}}),
        "mix": lambda: post("/api/mix", {"a": first["image"], "b": second["image"], "alpha": 0.5}),
        "random, 8 samples": lambda: post("/api/random", {"temperature": 0.7, "seed": 1, "n": 8}),
    }
    for request in kinds.values():  # traces every tf.function first
        assert request().status_code == 200
    spent = {kind: [] for kind in kinds}
    for _ in range(ROUNDS):
        for kind, request in kinds.items():
            for _ in range(REPEATS):
                start = time.perf_counter()
                response = request()
                spent[kind].append(time.perf_counter() - start)
                assert response.status_code == 200, response.get_json()
    print("| request | median ms | per round (ms) |")
    print("|---|---|---|")
    for kind, values in spent.items():
        rounds = [np.median(values[i * REPEATS:(i + 1) * REPEATS]) * 1e3 for i in range(ROUNDS)]
        print(f"| {kind} | {np.median(values) * 1e3:.1f} | {', '.join(f'{r:.1f}' for r in rounds)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logs/fashion_small")
