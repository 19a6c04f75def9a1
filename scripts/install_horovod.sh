#!/usr/bin/env bash
# Build and install Horovod 0.28.1 with TensorFlow + Gloo (and NCCL where CUDA is present) into the
# active Python environment. Horovod's last release does not build against TF >= 2.19 as shipped:
# horovod/tensorflow/xla_mpi_ops.cc includes an XLA header that TF has since moved. Those XLA ops are
# optional and off by default (HOROVOD_ENABLE_XLA_OPS), so we compile them out; see
# ../shared/reference/horovod-on-tf2.md and horovod PR #4302.
#
# Usage: scripts/install_horovod.sh PYTHON   (skips at once when Horovod already imports)
set -euo pipefail
PY=${1:-python}
VERSION=0.28.1

if "$PY" - <<'PYEOF' 2>/dev/null
import horovod.tensorflow as hvd
assert hvd.gloo_built(), "horovod without gloo"
PYEOF
then
  exit 0
fi

echo "[install_horovod] building horovod==$VERSION from source (takes 3-6 minutes on 2 cores)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$WORK"
tar -xzf "$WORK"/horovod-$VERSION.tar.gz -C "$WORK"
SRC="$WORK/horovod-$VERSION"
XLA_SRC="$SRC/horovod/tensorflow/xla_mpi_ops.cc"
grep -q '^#if TENSORFLOW_VERSION >= 2006000000' "$XLA_SRC" || {
  echo "[install_horovod] unexpected source: the XLA guard in $XLA_SRC was not found" >&2; exit 1; }
sed -i 's/^#if TENSORFLOW_VERSION >= 2006000000/#if 0  \/\/ glow-tf: XLA ops compiled out for TF >= 2.19/' "$XLA_SRC"

export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
export HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=gloo
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  export HOROVOD_GPU_OPERATIONS=NCCL
fi
MAKEFLAGS="-j$(nproc)" "$PY" -m pip install --no-cache-dir --no-build-isolation "$SRC"
"$PY" -c 'import horovod.tensorflow as hvd; print("[install_horovod] ok, gloo:", hvd.gloo_built())'
