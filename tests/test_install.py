"""The install's logic that downloads nothing (scripts/install_lib.sh), run on fake folder trees: which nvcc
Horovod is built with, which GPU architectures, NCCL from the pip wheel, the rpath that finds it; and the
Makefile's offline and apt-get commands (make -n). scripts/check_cuda_build.sh runs the real thing."""

import os
import stat
import subprocess

import pytest

from tests.runs import ROOT

LIB = os.path.join(ROOT, "scripts", "install_lib.sh")

# `nvcc --list-gpu-code` of CUDA 12.9 and of CUDA 13.0, as those releases print it (one per line).
CUDA12_CODES = "sm_50\nsm_52\nsm_53\nsm_60\nsm_61\nsm_62\nsm_70\nsm_72\nsm_75\nsm_80\nsm_86\nsm_87\nsm_89\nsm_90\n" \
               "sm_100\nsm_101\nsm_103\nsm_120\nsm_121\n"
CUDA13_CODES = "sm_75\nsm_80\nsm_86\nsm_87\nsm_88\nsm_89\nsm_90\nsm_100\nsm_110\nsm_103\nsm_120\nsm_121\n"


def bash(script, env=None, check=True):
    """Run `script` in bash -euo pipefail with install_lib.sh sourced; (returncode, stdout, stderr)."""
    full_env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    full_env.update(env or {})
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail; . {LIB}; {script}"], env=full_env,
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def fake_nvcc(home, release):
    """home/bin/nvcc answering --version as that CUDA release's nvcc does."""
    os.makedirs(os.path.join(home, "bin"), exist_ok=True)
    path = os.path.join(home, "bin", "nvcc")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "echo 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
                f"echo 'Cuda compilation tools, release {release}, V{release}.86'\n"
                f"echo 'Build cuda_{release}.r{release}/compiler.0'\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def tree(tmp_path):
    """A site-packages/nvidia of tensorflow[and-cuda] (nvcc wheel with ptxas only), a CUDA 13 toolkit
    in /usr/local/cuda and a CUDA 12 one in /usr/local/cuda-12.9, all fake."""
    site = tmp_path / "site-packages" / "nvidia"
    for part in ("cuda_nvcc/bin", "nccl/include", "nccl/lib", "cuda_runtime/lib"):
        (site / part).mkdir(parents=True)
    (site / "cuda_nvcc/bin/ptxas").write_text("")
    (site / "nccl/include/nccl.h").write_text("#define NCCL_MAJOR 2\n")
    (site / "nccl/lib/libnccl.so.2").write_text("")
    fake_nvcc(str(tmp_path / "usr/local/cuda"), "13.0")
    fake_nvcc(str(tmp_path / "usr/local/cuda-12.9"), "12.9")
    search = f"{tmp_path}/usr/local/cuda {tmp_path}/usr/local/cuda-*"
    return tmp_path, str(site), search


def test_nvcc_release_reads_the_version_line(tmp_path):
    nvcc = fake_nvcc(str(tmp_path / "cuda"), "12.9")
    assert bash(f"nvcc_release {nvcc}")[1] == "12.9"


def test_find_nvcc_skips_a_toolkit_of_another_cuda_major(tree):
    tmp, site, search = tree
    # /usr/local/cuda is CUDA 13, searched first, and skipped: TensorFlow's wheels are CUDA 12.
    assert bash(f"find_nvcc 12 {site}", {"GLOW_CUDA_SEARCH": search})[1] == f"{tmp}/usr/local/cuda-12.9/bin/nvcc"
    assert bash(f"find_nvcc 13 {site}", {"GLOW_CUDA_SEARCH": search})[1] == f"{tmp}/usr/local/cuda/bin/nvcc"


def test_find_nvcc_prefers_the_user_s_toolkit(tree):
    tmp, site, search = tree
    mine = fake_nvcc(str(tmp / "home/me/cuda-12.4"), "12.4")
    got = bash(f"find_nvcc 12 {site}", {"GLOW_CUDA_SEARCH": search, "HOROVOD_CUDA_HOME": str(tmp / "home/me/cuda-12.4")})
    assert got[1] == mine
    on_path = fake_nvcc(str(tmp / "opt/nv"), "12.8")
    got = bash(f"find_nvcc 12 {site}", {"GLOW_CUDA_SEARCH": search, "PATH": f"{tmp}/opt/nv/bin:/usr/bin:/bin"})
    assert got[1] == on_path


def test_find_nvcc_takes_the_wheels_nvcc_when_there_is_one(tree):
    tmp, site, search = tree
    # The CUDA 13 wheels' layout (nvidia/cu13/bin/nvcc); the CUDA 12 ptxas-only wheel is not a compiler.
    wheel = fake_nvcc(os.path.join(site, "cu13"), "13.0")
    assert bash(f"find_nvcc 13 {site}", {"GLOW_CUDA_SEARCH": ""})[1] == wheel
    code, out, _ = bash(f"find_nvcc 12 {site}", {"GLOW_CUDA_SEARCH": ""}, check=False)
    assert code == 1 and out == ""


def test_cuda_home_is_the_parent_of_bin_through_symlinks(tree):
    tmp, _, _ = tree
    os.symlink(tmp / "usr/local/cuda-12.9", tmp / "cuda-link")
    assert bash(f"cuda_home {tmp}/cuda-link/bin/nvcc")[1] == f"{tmp}/usr/local/cuda-12.9"


def test_cuda_archs_cover_v100_to_h100_where_nvcc_builds_them():
    code, out, err = bash(f"cuda_archs '{CUDA12_CODES}'")
    assert out == "70,75,80,86,89,90" and err == ""
    code, out, err = bash(f"cuda_archs '{CUDA13_CODES}'")
    assert out == "75,80,86,89,90"
    assert "sm_70" in err  # CUDA 13 dropped Volta: said, not silent
    code, out, err = bash("cuda_archs 'sm_50 sm_52'", check=False)
    assert code == 1 and out == "" and "sm_50 sm_52" in err


def test_cuda_archs_follow_glow_cuda_archs():
    assert bash(f"cuda_archs '{CUDA12_CODES}'", {"GLOW_CUDA_ARCHS": "80 90 100"})[1] == "80,90,100"


def test_nccl_view_gives_cmake_the_unversioned_library(tree):
    tmp, site, _ = tree
    bash(f"nccl_view {site} {tmp}/view")
    assert os.path.isfile(tmp / "view/include/nccl.h")
    assert os.path.realpath(tmp / "view/lib/libnccl.so") == os.path.join(site, "nccl/lib/libnccl.so.2")
    code, _, err = bash(f"nccl_view {tmp}/nowhere {tmp}/view2", check=False)
    assert code == 1 and f"{tmp}/nowhere" in err and "nvidia-nccl" in err


def test_unversioned_links(tmp_path):
    for name in ("libcudart.so.13", "libcupti.so.13", "libnvrtc.so"):
        (tmp_path / name).write_text(name)
    bash(f"unversioned_links {tmp_path}")
    assert os.readlink(tmp_path / "libcudart.so") == "libcudart.so.13"
    assert os.readlink(tmp_path / "libcupti.so") == "libcupti.so.13"
    assert not os.path.islink(tmp_path / "libnvrtc.so")


def test_the_rpath_leads_from_horovod_s_libraries_to_the_wheels(tree):
    tmp, site, _ = tree
    origin = os.path.join(os.path.dirname(site), "horovod", "tensorflow")  # where mpi_lib.*.so lies
    dirs = [os.path.normpath(p.replace("$ORIGIN", origin)) for p in bash("horovod_rpath")[1].split(":")]
    assert dirs[0] == os.path.join(site, "nccl", "lib") and os.path.isdir(dirs[0])
    assert dirs[1] == os.path.join(site, "cuda_runtime", "lib") and os.path.isdir(dirs[1])


def make_n(*args):
    proc = subprocess.run(["make", "-n", "-C", ROOT, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_apt_get_waits_for_the_dpkg_lock(tmp_path):
    out = make_n(f"FASHION_MNIST={tmp_path}/f", f"CHROMEDRIVER={tmp_path}/c", f"{tmp_path}/f", f"{tmp_path}/c")
    apt_lines = [line for line in out.splitlines() if "apt-get" in line]
    assert len(apt_lines) == 4
    assert all("-o DPkg::Lock::Timeout=" in line for line in apt_lines)


def test_offline_install_reads_the_wheelhouse_only(tmp_path):
    out = make_n(f"VENV={tmp_path}/venv", f"WHEELHOUSE={tmp_path}/wh", f"FASHION_MNIST={tmp_path}/f",
                 f"CHROMEDRIVER={tmp_path}/c", "TF_VARIANT=cuda", "install")
    pip_lines = [line for line in out.splitlines() if " -m pip install" in line]
    assert len(pip_lines) == 4
    assert all(f"--no-index --find-links {tmp_path}/wh" in line for line in pip_lines)
    assert f'WHEELHOUSE="{tmp_path}/wh" scripts/install_horovod.sh' in out
    assert "apt-get update" not in out  # offline: no index to update from
    assert "chromium" in out  # says what it does not install


def test_wheelhouse_holds_horovod_s_source_and_the_chosen_tensorflow(tmp_path):
    out = make_n(f"WHEELHOUSE={tmp_path}/wh", "TF_VARIANT=cuda", "wheelhouse")
    assert '"tensorflow[and-cuda]==' in out and f"install_horovod.sh --download {tmp_path}/wh cuda" in out
    assert "foolbox==" in out
    assert '"tensorflow-cpu==' in make_n(f"WHEELHOUSE={tmp_path}/wh", "TF_VARIANT=cpu", "wheelhouse")
