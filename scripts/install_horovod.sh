#!/usr/bin/env bash
# Build and install Horovod 0.28.1 with TensorFlow + Gloo (and NCCL where CUDA is present) into the
# active Python environment. Horovod's last release does not build against TF >= 2.19 as shipped:
# horovod/tensorflow/xla_mpi_ops.cc includes an XLA header that TF has since moved. Those XLA ops are
# optional and off by default (HOROVOD_ENABLE_XLA_OPS), so we compile them out (horovod PR #4302
# would fix the include upstream).
#
# One more change, to the installed launcher: on SIGTERM or Ctrl-C, horovodrun sends SIGTERM to its ranks
# and kills them 5 seconds later. A rank needs longer than that to finish its step and write the
# pre-emption checkpoint of a large model, so the grace period becomes HOROVOD_GRACEFUL_TERMINATION_TIME_S
# (default 120 s; a scheduler's own kill still comes when the scheduler says).
#
# Usage: scripts/install_horovod.sh PYTHON   (skips the build when Horovod already imports)
set -euo pipefail
PY=${1:-python}
VERSION=0.28.1

patch_grace_period() {
  local file
  file=$("$PY" -c 'import horovod.runner.common.util.safe_shell_exec as m; print(m.__file__)')
  if ! grep -q 'HOROVOD_GRACEFUL_TERMINATION_TIME_S' "$file"; then
    sed -i "s/^GRACEFUL_TERMINATION_TIME_S = 5$/GRACEFUL_TERMINATION_TIME_S = float(os.environ.get('HOROVOD_GRACEFUL_TERMINATION_TIME_S', 120))  # glow-tf/" "$file"
    grep -q 'HOROVOD_GRACEFUL_TERMINATION_TIME_S' "$file" || {
      echo "[install_horovod] unexpected source: GRACEFUL_TERMINATION_TIME_S not found in $file" >&2; exit 1; }
  fi
}

if "$PY" - <<'PYEOF' 2>/dev/null
import horovod.tensorflow as hvd
assert hvd.gloo_built(), "horovod without gloo"
PYEOF
then
  patch_grace_period
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
patch_grace_period
"$PY" -c 'import horovod.tensorflow as hvd; print("[install_horovod] ok, gloo:", hvd.gloo_built())'
