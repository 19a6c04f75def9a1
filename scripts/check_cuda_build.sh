#!/usr/bin/env bash
# The GPU path of the install, checked from nothing on a machine with or without a GPU (about 4 GB of
# downloads, not part of CI): make wheelhouse for the CUDA build, an offline make install from it with the
# package index unreachable, Horovod with NCCL and CUDA that finds them without LD_LIBRARY_PATH, then
# train.py and horovodrun -np 2 through the CUDA build of TensorFlow, the GPU tests (they skip without a
# GPU), make gpu-check, and a second make install that has nothing to do. Each step prints its time, and
# the download step its size; a table of them ends the run.
#
# Usage: scripts/check_cuda_build.sh [DIR]   (default /tmp/glow-cuda-check; DIR is emptied first)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${1:-/tmp/glow-cuda-check}
VENV=$DIR/venv
WH=$DIR/wheelhouse
rm -rf "$DIR"
mkdir -p "$DIR"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
unset LD_LIBRARY_PATH
TABLE=()

step() {  # step NAME COMMAND...: run it, print and record its time
  local name=$1 start rc
  shift
  echo "== check_cuda_build: $name"
  start=$(date +%s)
  "$@" && rc=0 || rc=$?
  local secs=$(( $(date +%s) - start ))
  TABLE+=("$(printf '| %-44s | %5ss |' "$name" "$secs")")
  echo "== check_cuda_build: $name: ${secs}s$([ $rc = 0 ] || echo ", FAILED (exit $rc)")"
  return $rc
}

# Offline: no index, no local mirrors from pip's configuration files, no find-links.
offline() {
  PIP_CONFIG_FILE=/dev/null PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_EXTRA_INDEX_URL= PIP_FIND_LINKS= \
    PIP_NO_INDEX=1 "$@"
}

step "make wheelhouse TF_VARIANT=cuda" make -s TF_VARIANT=cuda WHEELHOUSE="$WH" wheelhouse
TABLE[-1]+=" downloaded $(du -sh "$WH" | cut -f1) ($(find "$WH" -type f | wc -l) files)"

step "make install (offline, from the wheelhouse)" offline make -s TF_VARIANT=cuda VENV="$VENV" WHEELHOUSE="$WH" install
TABLE[-1]+=" venv $(du -sh "$VENV" | cut -f1)"

import_check() {
  "$VENV/bin/python" - <<'EOF'
import glob, os, subprocess
import tensorflow as tf
import horovod.tensorflow as hvd
print(f"TensorFlow {tf.__version__}, CUDA build: {tf.test.is_built_with_cuda()}, "
      f"CUDA {tf.sysconfig.get_build_info().get('cuda_version')}, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
print(f"Horovod: gloo_built={hvd.gloo_built()} nccl_built={hvd.nccl_built()} cuda_built={hvd.cuda_built()} "
      f"mpi_built={hvd.mpi_built()}; LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH')!r}")
lib = glob.glob(os.path.join(os.path.dirname(hvd.__file__), "mpi_lib*.so"))[0]
runpath = [line for line in subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout.splitlines()
           if "RUNPATH" in line or "RPATH" in line]
print("runpath:", runpath[0].split("[", 1)[1].rstrip("]") if runpath else None)
nccl = [line.strip() for line in subprocess.run(["ldd", lib], capture_output=True, text=True).stdout.splitlines()
        if "nccl" in line]
print("ldd:", *nccl)
assert hvd.nccl_built() and hvd.cuda_built(), "Horovod without NCCL or CUDA"
assert nccl and "not found" not in nccl[0], "libnccl not found through the rpath"
EOF
}
step "import check" import_check

TINY=(--preset tiny --problem fashion_mnist --anchor_size 8 --n_train 32 --n_test 20 --epochs_warmup 1
      --epochs_full_valid 1 --epochs 2)
step "python train.py (tiny, 1 epoch, CPU)" "$VENV/bin/python" train.py "${TINY[@]}" --logdir "$DIR/logs/one"
step "horovodrun -np 2 train.py (tiny, 1 epoch)" "$VENV/bin/horovodrun" -np 2 "$VENV/bin/python" train.py \
  "${TINY[@]}" --logdir "$DIR/logs/two"
step "GPU and install tests" env PYTHONPATH="$ROOT" "$VENV/bin/python" -m pytest -q -rs tests/test_gpu.py tests/test_install.py
step "make gpu-check" make -s VENV="$VENV" gpu-check
step "make install again (nothing to do)" offline make -s TF_VARIANT=cuda VENV="$VENV" WHEELHOUSE="$WH" install

echo
echo "| step | time | size |"
echo "|---|---|---|"
printf '%s |\n' "${TABLE[@]}"
