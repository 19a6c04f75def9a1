"""Hosts for multi-host tests: network namespaces made by scripts/local_cluster.sh (the script a user runs
by hand), each with its own address, hostname, /etc/hosts and sshd, joined by a private bridge."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.runs import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "local_cluster.sh")
IFACE = "eth0"  # each host's interface on the bridge


def why_no_cluster():
    """Why namespace hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "multi-host tests need root (network namespaces)"
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"multi-host tests need {tool}"
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        return "multi-host tests need sshd (apt-get install openssh-server, or make install)"
    probe = subprocess.run(["unshare", "--net", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make network namespaces here: {probe.stderr.strip() or probe.returncode}"
    return None


class Cluster:
    def __init__(self, state_dir, n):
        self.dir, self.hosts = str(state_dir), [f"node{i}" for i in range(1, n + 1)]
        with open(os.path.join(self.dir, "prefix")) as f:
            self.prefix = f.read().strip()

    def namespace(self, host):
        return f"{self.prefix}n{host[len('node'):]}"

    def command(self, host, argv):
        """argv run on `host`, as a user logged into it would run it."""
        return [SCRIPT, "exec", self.dir, host, *argv]

    def pids(self, host):
        out = subprocess.run(["ip", "netns", "pids", self.namespace(host)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill_ranks(self, host, marker="train.py"):
        """SIGKILL every process on `host` whose command line holds `marker` (its ranks); their number."""
        killed = 0
        for pid in self.pids(host):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        os.kill(pid, 9)
                        killed += 1
            except (FileNotFoundError, ProcessLookupError):
                pass
        return killed

    def link(self, host, up):
        subprocess.run(["ip", "-n", self.namespace(host), "link", "set", IFACE, "up" if up else "down"],
                       check=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two hosts, node1 and node2, removed (with every process on them) after the module's tests."""
    reason = why_no_cluster()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("cluster")
    made = subprocess.run([SCRIPT, "up", str(state), "2"], capture_output=True, text=True)
    try:
        if made.returncode != 0:
            pytest.skip(f"cannot make namespace hosts: {(made.stderr or made.stdout).strip()}")
        yield Cluster(state, 2)
    finally:
        subprocess.run([SCRIPT, "down", str(state)], capture_output=True)
