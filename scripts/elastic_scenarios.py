#!/usr/bin/env python
"""Elastic train.py jobs under the events of a pre-emptible cluster, and the table of what they did.

    python scripts/elastic_scenarios.py                      # both hosts are this machine, two names
    python scripts/elastic_scenarios.py --cluster DIR        # hosts node1, node2 of scripts/local_cluster.sh
    python scripts/elastic_scenarios.py --scenarios kill_worker undisturbed --out /tmp/scenarios

Each scenario is one job, `horovodrun -np 2 --min-np 1 --max-np 4 --host-discovery-script discover.sh
python train.py ...` (Fashion-MNIST, the tiny preset), whose discovery script lists two hosts of one
slot each:

    remove_add   a host leaves the discovery script's output, and later comes back
    kill_worker  the worker of rank 1 is SIGKILLed; its host comes back after the blacklist cooldown
    kill_rank0   the same for rank 0, whose logs, checkpoints and lock pass to the new rank 0
    undisturbed  nothing happens (the reference for the final bits/dim)

The table has one row per event: what the job did, the seconds from the event until rank 0 finished its
next training step, the steps lost (done after the last commit, so done again) and the job's final test
bits/dim beside the undisturbed job's. tests/test_elastic_jobs.py runs these jobs and checks them.
With --cluster, horovodrun runs on node1 (the ranks of node2 start over ssh) with --network-interface.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BESIDE = os.path.join(os.path.dirname(sys.executable), "horovodrun")
HOROVODRUN = _BESIDE if os.path.exists(_BESIDE) else "horovodrun"
SCENARIOS = ("remove_add", "kill_worker", "kill_rank0", "undisturbed")
COMMIT_STEPS = 10
# 80 steps of 2 ranks x 4 images per epoch; n_test divisible by 2 images x 1 or 2 ranks.
FLAGS = ["--preset", "tiny", "--problem", "fashion_mnist", "--anchor_size", "8", "--n_train", "640",
         "--n_test", "24", "--epochs_warmup", "1", "--epochs_full_valid", "1", "--epochs", "28",
         "--elastic_commit_steps", str(COMMIT_STEPS), "--verbose"]
COOLDOWN = ("5", "10")  # seconds a failed host stays blacklisted before it may come back

# Run by every worker: train.py, recording each (re)assignment of this process's rank and, at the end,
# its final weights, so that the caller can find a rank's process and compare the ranks.
HELPER = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    sys.path.insert(0, os.environ["GLOW_ROOT"])
    import train
    from glow_tf.training import distributed, trainer

    out, argv = sys.argv[1], sys.argv[2:]
    trainers = []
    real_refresh = distributed.HorovodProcess.refresh
    def refresh(self):
        real_refresh(self)
        with open(f"{out}/ranks/{os.getpid()}.jsonl", "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "rank": self.rank, "size": self.size, "time": time.time(),
                                "host": os.environ.get("HOROVOD_HOSTNAME")}) + "\\n")
    distributed.HorovodProcess.refresh = refresh
    real_adopt = trainer.Trainer.adopt  # called by the constructor and at every resize
    trainer.Trainer.adopt = lambda self, splits: (trainers.append(self), real_adopt(self, splits))[1]
    code = train.main(argv)
    if trainers and code == 0:
        t = trainers[0]
        # Everything but the wall-clock seconds each rank counts for itself.
        state = [v for v in t.variables if v is not t.state.train_time]
        np.savez(f"{out}/end_{os.getpid()}.npz", *[np.asarray(v.numpy()) for v in state])
        with open(f"{out}/end_{os.getpid()}.json", "w") as f:
            json.dump({"rank": t.dist.rank, "size": t.dist.size}, f)
    sys.exit(code)
""")

_STEP = re.compile(r"^\[\d+\]<stdout>:(\d+) [0-9.e-]+ \[")
_RESIZED = re.compile(r"elastic: (\d+) rank\(s\) \(the last commit was made by (\d+)\); continuing from step "
                      r"(\d+), redoing the (\d+) step")
_CONTINUED = re.compile(r"elastic: training continued at step (\d+), ([0-9.]+) s after")
_FINAL = re.compile(r"test bits/dim ([0-9.]+) .* after (\d+) steps")


class Hosts:
    """Where a job's two hosts are: `names`, how to launch on the first, and the extra horovodrun flags."""

    def __init__(self, cluster_dir=None):
        self.cluster_dir = cluster_dir
        if cluster_dir:
            self.names = ["node1", "node2"]
            self.flags = ["--network-interface", "eth0"]
        else:
            # Two names of this machine: with one name alone a killed worker would blacklist the only host.
            self.names = ["localhost", socket.gethostname()]
            self.flags = []

    def launch(self, argv):
        if self.cluster_dir:
            return [os.path.join(ROOT, "scripts", "local_cluster.sh"), "exec", self.cluster_dir, "node1", *argv]
        return argv


class Job:
    """One elastic job: its discovery file, its output (read by a thread, each line with its time)."""

    def __init__(self, hosts: Hosts, folder: str, flags=FLAGS):
        self.hosts, self.folder = hosts, folder
        self.out = os.path.join(folder, "out")
        os.makedirs(os.path.join(self.out, "ranks"), exist_ok=True)
        self.discovery = os.path.join(folder, "hosts")
        script = os.path.join(folder, "discover.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\ncat {self.discovery}\n")
        os.chmod(script, 0o755)
        helper = os.path.join(folder, "helper.py")
        with open(helper, "w") as f:
            f.write(HELPER)
        self.logdir = os.path.join(folder, "run")
        self.list_hosts(hosts.names)
        argv = [HOROVODRUN, "-np", "2", "--min-np", "1", "--max-np", "4", "--host-discovery-script", script,
                "--blacklist-cooldown-range", *COOLDOWN, *hosts.flags,
                sys.executable, helper, self.out, *flags, "--logdir", self.logdir]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOROVOD_", "OMPI_", "PMI"))}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", GLOW_ROOT=ROOT)
        self.lines = []  # (time, line)
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(hosts.launch(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append((time.time(), line.rstrip("\n")))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def list_hosts(self, names):
        with open(self.discovery + ".new", "w") as f:
            f.write("".join(f"{name}:1\n" for name in names))
        os.replace(self.discovery + ".new", self.discovery)

    def wait(self, predicate, since=0, timeout=240):
        """The first (index, time, match) at or after line `since` for which predicate(line) is truthy."""
        deadline = time.time() + timeout
        i = since
        with self.changed:
            while True:
                while i < len(self.lines):
                    match = predicate(self.lines[i][1])
                    if match:
                        return i, self.lines[i][0], match
                    i += 1
                if self.proc.poll() is not None and i >= len(self.lines) or time.time() > deadline:
                    tail = "\n".join(line for _, line in self.lines[-60:])
                    raise RuntimeError(f"the job {'ended' if self.proc.poll() is not None else 'timed out'} "
                                       f"before the awaited line:\n{tail}")
                self.changed.wait(1.0)

    def wait_for_images(self, n_processed, since=0):
        def reached(line):
            m = _STEP.match(line)
            return m and int(m.group(1)) >= n_processed
        return self.wait(reached, since)[0]

    def workers(self):
        """{rank: pid} of the workers' latest assignments."""
        latest = {}
        for path in glob.glob(os.path.join(self.out, "ranks", "*.jsonl")):
            with open(path) as f:
                records = [json.loads(line) for line in f if line.strip()]
            if records:
                latest[records[-1]["pid"]] = records[-1]
        alive = {}
        for pid, r in latest.items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive[r["rank"]] = pid
        return alive

    def finish(self, timeout=600):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        self.reader.join(timeout=30)  # the rest of the output
        return self.proc.returncode

    def text(self):
        return "\n".join(line for _, line in self.lines)


def _resized_to(size):
    return lambda line: (m := _RESIZED.search(line)) and int(m.group(1)) == size and m


def _event(job, name, since, act):
    """Do `act`, then wait for the job to go on: the row of the table (without the final bits/dim)."""
    t0 = time.time()
    did = act()
    i, _, resized = job.wait(lambda line: _RESIZED.search(line), since)
    j, t1, _ = job.wait(lambda line: _CONTINUED.search(line), i)
    size, committed, step, redone = (int(g) for g in resized.groups())
    return j, {"event": name, "did": f"{did}; went on with {size} rank(s) from step {step}",
               "seconds": round(t1 - t0, 1), "steps_lost": redone, "from_step": step, "size": size,
               "committed_size": committed}


def run(scenario: str, hosts: Hosts, folder: str):
    """Run one scenario's job; returns {"rows", "exit", "final", "steps", "job"}."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
    job = Job(hosts, folder)
    rows = []
    try:
        since = job.wait_for_images(1200)  # past the first epochs, at 2 ranks
        if scenario == "remove_add":
            def remove():
                gone = hosts.names[1]
                job.list_hosts(hosts.names[:1])
                return f"{gone} left the discovery output"
            since, row = _event(job, "a host disappears from discovery", since, remove)
            rows.append(row)
            since = job.wait_for_images(0, since + 200)
            since, row = _event(job, "the host reappears in discovery", since,
                                lambda: job.list_hosts(hosts.names) or f"{hosts.names[1]} listed again")
            rows.append(row)
        elif scenario in ("kill_worker", "kill_rank0"):
            rank = 0 if scenario == "kill_rank0" else 1
            def kill():
                pid = job.workers()[rank]
                os.kill(pid, signal.SIGKILL)
                return f"SIGKILL to rank {rank} (pid {pid})"
            since, row = _event(job, f"SIGKILL of the worker of rank {rank}", since, kill)
            rows.append(row)
            # The killed worker's host is blacklisted, then comes back after the cooldown: a new worker joins.
            t0 = time.time()
            i, _, resized = job.wait(_resized_to(2), since)
            j, t1, _ = job.wait(lambda line: _CONTINUED.search(line), i)
            _, committed, step, redone = (int(g) for g in resized.groups())
            rows.append({"event": "its host comes back after the blacklist cooldown",
                         "did": f"a new worker joined; went on with 2 rank(s) from step {step}",
                         "seconds": round(t1 - t0, 1), "steps_lost": redone, "from_step": step, "size": 2,
                         "committed_size": committed, "waited_for_cooldown": True})
        code = job.finish()
    except BaseException:
        if job.proc.poll() is None:
            os.killpg(job.proc.pid, signal.SIGKILL)
        raise
    final = _FINAL.search(job.text())
    return {"rows": rows, "exit": code, "final": float(final.group(1)) if final else None,
            "steps": int(final.group(2)) if final else None, "job": job}


def table(results: dict) -> str:
    reference = results.get("undisturbed", {}).get("final")
    out = ["| event | what the job did | seconds until training continued | steps lost | final test bits/dim "
           "| undisturbed run |", "|---|---|---:|---:|---:|---:|"]
    for scenario, result in results.items():
        if scenario == "undisturbed":
            continue
        for row in result["rows"]:
            seconds = f"{row['seconds']}" + (" (from the first recovery, cooldown included)" if row.get("waited_for_cooldown") else "")
            out.append(f"| {row['event']} | {row['did']} | {seconds} | {row['steps_lost']} | "
                       f"{result['final']} | {reference if reference is not None else '-'} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", help="a folder made by scripts/local_cluster.sh up (hosts node1, node2)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--out", default="/tmp/elastic_scenarios")
    args = parser.parse_args()
    hosts = Hosts(os.path.abspath(args.cluster) if args.cluster else None)
    results = {}
    for scenario in args.scenarios:
        folder = os.path.join(args.out, scenario)
        if os.path.exists(folder):
            subprocess.run(["rm", "-rf", folder], check=True)
        print(f"{scenario} ...", file=sys.stderr, flush=True)
        results[scenario] = run(scenario, hosts, folder)
        r = results[scenario]
        print(f"{scenario}: exit {r['exit']}, final test bits/dim {r['final']} after {r['steps']} steps",
              file=sys.stderr, flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
