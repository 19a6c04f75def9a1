#!/usr/bin/env bash
# One command for a machine with NVIDIA GPUs (`make gpu-check`): install the CUDA build of TensorFlow
# and Horovod with NCCL, run the suite's GPU tests, then print the GPU numbers (bench/gpu_bench.py:
# CIFAR-10 train img/s per GPU with and without gradient checkpointing, the largest per-GPU batch at
# 256x256 with and without, 256x256 batch-1 sampling latency, horovodrun -np <all GPUs> scaling).
# Without a GPU it says so and exits 0.
#
# Usage: bench/gpu_check.sh [arguments for bench/gpu_bench.py, e.g. --max_batch 32 --steps 10]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi is missing or lists none); nothing to check."
  exit 0
fi
nvidia-smi -L

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
make TF_VARIANT=cuda install
# install_horovod.sh builds NCCL in when it sees a GPU, but keeps a Horovod that already imports: one
# built earlier on a CPU-only machine has no NCCL, so rebuild it then.
if ! "$PY" -c 'import horovod.tensorflow as hvd, sys; sys.exit(0 if hvd.nccl_built() else 1)'; then
  echo "gpu-check: Horovod has no NCCL; rebuilding it"
  "$PY" -m pip uninstall -y -q horovod
  scripts/install_horovod.sh "$PY"
fi
"$PY" - <<'EOF'
import tensorflow as tf
import horovod.tensorflow as hvd
gpus = tf.config.list_physical_devices("GPU")
print(f"gpu-check: TensorFlow {tf.__version__} sees {len(gpus)} GPU(s); Horovod NCCL: {bool(hvd.nccl_built())}")
assert gpus, "the CUDA build of TensorFlow sees no GPU (driver or CUDA libraries missing?)"
assert hvd.nccl_built(), "Horovod was built without NCCL"
EOF

export PYTHONPATH="$PWD" TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
echo "gpu-check: GPU tests"
"$PY" -m pytest -q tests/test_gpu.py
echo "gpu-check: measurements"
"$PY" bench/gpu_bench.py "$@"
