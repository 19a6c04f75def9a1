"""Long-lived benchmark workers timed in interleaved repetitions (used by vs_pytorch.py and cpu_layout.py).

A worker process builds its model, runs its warmup steps, prints READY and waits. Each line N on its
stdin runs N timed steps and answers with their images/s. `interleave` runs the repetitions: in each,
every worker in turn runs its steps while the others wait, the order rotating from one repetition to
the next, so that all contenders' figures, and the ratios between them, come from the same minutes of a
shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve(run_steps, images_per_step: int) -> None:
    """Worker loop: READY, then for each line N on stdin run N steps and answer with their timings."""
    print("READY " + json.dumps({"images_per_step": images_per_step}), flush=True)
    for line in sys.stdin:
        n = int(line)
        wall, cpu = time.perf_counter(), time.process_time()
        run_steps(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print("RESULT " + json.dumps({"img_s": n * images_per_step / wall, "cpu_s": cpu, "wall_s": wall}),
              flush=True)


class Worker:
    """One contender's process; `img_s` collects its figure of each repetition."""

    def __init__(self, name: str, cmd: list, env=None):
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=ROOT)
        self.img_s: list = []
        self.rss_kib = None

    def _read(self, tag: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1:])
        err = self.proc.stderr.read().strip().splitlines()
        raise RuntimeError(f"{self.name}: worker exited ({err[-1] if err else 'no message'})")

    def ready(self) -> None:
        self._read("READY")

    def run(self, steps: int) -> float:
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        self.img_s.append(self._read("RESULT")["img_s"])
        return self.img_s[-1]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.stderr.close()
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.rss_kib = usage.ru_maxrss


def interleave(specs: list[tuple], reps: int, steps: int) -> list[Worker]:
    """Start the workers of `specs` [(name, cmd, env)] one at a time (set-up does not compete), run `reps`
    interleaved repetitions of `steps` steps, print each repetition, and return the closed workers."""
    workers = []
    try:
        for name, cmd, env in specs:
            workers.append(Worker(name, cmd, env))
            workers[-1].ready()
        for rep in range(reps):
            shift = rep % len(workers)
            for worker in workers[shift:] + workers[:shift]:
                worker.run(steps)
            print(f"repetition {rep + 1}: " + ", ".join(f"{w.name} {w.img_s[-1]:.1f}" for w in workers), flush=True)
    except BaseException:
        for worker in workers:
            worker.proc.kill()
        raise
    for worker in workers:
        worker.close()
    return workers
