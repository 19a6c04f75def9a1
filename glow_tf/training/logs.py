"""What a run reports: train.txt/test.txt, TensorBoard events, sample grids and the console.

The original wrote JSON lines with the hps first (utils.ResultLogger), PNG grids from a background
thread (graphics.save_raster) and one console line per reported epoch (train.py); so does this, plus
TensorBoard scalars and images, and a progress bar on a terminal. Only rank 0 reports.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
from typing import Optional

import numpy as np
import tensorflow as tf

from glow_common.files import write_error, write_text
from glow_tf.images import grid, save_png
from glow_tf.samples import TEMPERATURES
from glow_tf.training.state import STATS

CONSOLE_HEADER = "epoch n_processed n_images ips dtrain dtest dsample dtot train_results test_results msg"


def format_results(results) -> dict:
    """The original's per-epoch results: each stat as a string with four decimals."""
    return {name: f"{value:.4f}" for name, value in zip(STATS, results)}


class ResultLogger:
    """JSON lines, the hps first (utils.ResultLogger). On resume, lines past the checkpoint are dropped."""

    def __init__(self, path: str, hps_line: dict, resume_epoch: Optional[int] = None):
        self.path = path
        lines = [json.dumps(hps_line)]
        if resume_epoch is not None and os.path.isfile(path):
            with open(path) as f:
                old = [line for line in f.read().splitlines() if line.strip()]
            lines += [line for line in old[1:] if _epoch_of(line) <= resume_epoch]
        write_text(path, "\n".join(lines) + "\n")
        self.file = open(path, "a")

    def log(self, **fields) -> None:
        try:
            self.file.write(json.dumps(fields) + "\n")
            self.file.flush()
        except OSError as err:
            raise write_error(self.path, err) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass


def _epoch_of(line: str) -> float:
    try:
        return json.loads(line).get("epoch", 0)
    except (ValueError, AttributeError):
        return float("inf")  # a torn last line (the process died mid-write) is dropped


class Reporter:
    """Rank 0's logs of one run: the two JSON-lines files, TensorBoard events and sample grids."""

    def __init__(self, logdir: str, hps_line: dict, resume_epoch: Optional[int]):
        self.logdir = logdir
        self.train = ResultLogger(os.path.join(logdir, "train.txt"), hps_line, resume_epoch)
        self.test = ResultLogger(os.path.join(logdir, "test.txt"), hps_line, resume_epoch)
        self.writer = tf.summary.create_file_writer(logdir)
        self.png = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the original's background thread
        self.pending = []

    def scalars(self, prefix: str, results, step: int, **extra) -> None:
        values = dict(zip(STATS, results), **extra)
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.write(f"{prefix}/{name}", tf.constant(float(value), tf.float32),
                                 metadata=_summary_metadata("scalars"))

    def samples(self, epoch: int, grids, step: int) -> None:
        mosaics = [grid(images) for images in grids]
        for i, mosaic in enumerate(mosaics):
            path = os.path.join(self.logdir, f"epoch_{epoch}_sample_{i}.png")
            self.pending.append(self.png.submit(save_png, mosaic, path))
        with self.writer.as_default(step=step):
            for temperature, mosaic in zip(TEMPERATURES, mosaics):
                tensor = tf.stack([tf.as_string(mosaic.shape[1]), tf.as_string(mosaic.shape[0]),
                                   tf.io.encode_png(mosaic)])
                tf.summary.write(f"samples/T={temperature}", tensor, metadata=_summary_metadata("images"))

    def close(self) -> None:
        self.png.shutdown(wait=True)
        for future in self.pending:
            future.result()  # a grid that could not be written raises its WriteError here
        self.writer.flush()
        self.train.close()
        self.test.close()


def _summary_metadata(plugin: str):
    from tensorflow.core.framework import summary_pb2

    # What tensorboard.summary.v2 writes for scalars and images (plugin data version 0), so that
    # TensorBoard reads the events without the `tensorboard` package being imported here.
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def progress_bar(total: int, epoch: int, enabled: bool):
    from tqdm import tqdm

    # Only on a terminal: in a redirected log, the per-epoch console line says the same without the noise.
    return tqdm(total=total, desc=f"epoch {epoch}", leave=False, disable=not (enabled and sys.stderr.isatty()),
                mininterval=1.0, dynamic_ncols=True)


def console_epoch(epoch: int, epochs_full_valid: int) -> bool:
    """Whether the original printed its console line after `epoch`: below 10, tens below 50, then the
    validation epochs."""
    return epoch < 10 or (epoch < 50 and epoch % 10 == 0) or epoch % epochs_full_valid == 0


def sample_epoch(epoch: int, epochs_full_sample: int) -> bool:
    """Whether the original drew sample grids after `epoch`: epochs 1 and 10, and every N-th."""
    return epoch in (1, 10) or epoch % epochs_full_sample == 0


def hps_record(hps, dist, splits) -> dict:
    """The hps line of train.txt/test.txt: every flag plus the values the original derived onto hps."""
    import dataclasses

    record = dataclasses.asdict(hps)
    record.update(image_size=hps.image_shape[0], n_y=hps.n_classes, n_test=splits.n_test,
                  n_bins=hps.n_bins, local_batch_train=splits.local_batch_train,
                  local_batch_test=splits.local_batch_test, local_batch_init=hps.local_batch_init(),
                  train_its=hps.train_its(dist.size), full_test_its=splits.test_its, n_ranks=dist.size)
    return record


def stats_line(results: np.ndarray) -> str:
    return str(dict(zip(STATS, np.round(results, 4).tolist())))
