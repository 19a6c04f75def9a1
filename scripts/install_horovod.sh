#!/usr/bin/env bash
# Build and install Horovod 0.28.1 with TensorFlow + Gloo into the environment of PYTHON, and with NCCL when
# that environment holds the CUDA build of TensorFlow (tensorflow[and-cuda]), GPU or not.
#
# Horovod's last release does not build against TF >= 2.19 as shipped: horovod/tensorflow/xla_mpi_ops.cc
# includes an XLA header that TF has since moved. Those XLA ops are optional and off by default
# (HOROVOD_ENABLE_XLA_OPS), so we compile them out (horovod PR #4302 would fix the include upstream).
#
# With CUDA, everything Horovod's CMake wants is found here, so a user sets nothing (install_lib.sh):
# - nvcc: one of TensorFlow's CUDA major version (HOROVOD_CUDA_HOME, CUDA_HOME, the PATH, /usr/local/cuda*).
#   No CUDA 12 wheel holds nvcc; without such a toolkit, the CUDA 13 compiler wheels are installed into a
#   temporary folder and build the kernels (then Horovod's GPU operations need a CUDA 13 driver, >= 580).
# - the architectures: V100..H100 as far as that nvcc builds them, PTX for the newest;
# - NCCL: the nvidia-nccl-cu12 wheel TensorFlow brought, linked as a shared library that Horovod's
#   libraries find through their rpath ($ORIGIN/../../nvidia/nccl/lib), without LD_LIBRARY_PATH.
#
# One more change, to the installed launcher: on SIGTERM or Ctrl-C, horovodrun sends SIGTERM to its ranks
# and kills them 5 seconds later. A rank needs longer than that to finish its step and write the
# pre-emption checkpoint of a large model, so the grace period becomes HOROVOD_GRACEFUL_TERMINATION_TIME_S
# (default 120 s; a scheduler's own kill still comes when the scheduler says).
#
# Usage: scripts/install_horovod.sh PYTHON   (skips the build when a suitable Horovod already imports)
#   WHEELHOUSE=DIR: take Horovod's source archive and every package from DIR, never from an index.
# scripts/install_horovod.sh --download DIR cpu|cuda: put into DIR what the build takes from the internet
#   (Horovod's source archive; for cuda also the CUDA 13 compiler wheels), for make wheelhouse.
set -euo pipefail
VERSION=0.28.1
CUDA_TOOLS=(nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-runtime nvidia-cuda-cccl)
CUDA_TOOLS_VERSION=13.0.*
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=install_lib.sh
. "$HERE/install_lib.sh"
say() { echo "[install_horovod] $*"; }

if [ "${1:-}" = --download ]; then
  dest=${2:?--download DIR cpu|cuda}
  python3 -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$dest"
  if [ "${3:-cpu}" = cuda ]; then
    python3 -m pip download -q --no-deps -d "$dest" "${CUDA_TOOLS[@]/%/==$CUDA_TOOLS_VERSION}"
  fi
  exit 0
fi
PY=${1:-python}

PIP_OFFLINE=()
if [ -n "${WHEELHOUSE:-}" ]; then
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
  PIP_OFFLINE=(--no-index --find-links "$WHEELHOUSE")
fi

patch_grace_period() {
  local file
  file=$("$PY" -c 'import horovod.runner.common.util.safe_shell_exec as m; print(m.__file__)')
  if ! grep -q 'HOROVOD_GRACEFUL_TERMINATION_TIME_S' "$file"; then
    sed -i "s/^GRACEFUL_TERMINATION_TIME_S = 5$/GRACEFUL_TERMINATION_TIME_S = float(os.environ.get('HOROVOD_GRACEFUL_TERMINATION_TIME_S', 120))  # glow-tf/" "$file"
    grep -q 'HOROVOD_GRACEFUL_TERMINATION_TIME_S' "$file" || {
      say "unexpected source: GRACEFUL_TERMINATION_TIME_S not found in $file" >&2; exit 1; }
  fi
}

# What TensorFlow is: "<cuda major or 0> <site-packages/nvidia or ->".
read -r TF_CUDA SITE_NVIDIA < <("$PY" - <<'PYEOF'
import importlib.util, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
major = tf.sysconfig.get_build_info().get("cuda_version", "0").split(".")[0] if tf.test.is_built_with_cuda() else "0"
spec = importlib.util.find_spec("nvidia")
print(major, list(spec.submodule_search_locations)[0] if spec else "-")
PYEOF
)

if "$PY" - "$TF_CUDA" <<'PYEOF' 2>/dev/null
import sys
import horovod.tensorflow as hvd
assert hvd.gloo_built(), "horovod without gloo"
assert sys.argv[1] == "0" or hvd.nccl_built(), "the CUDA build of TensorFlow, horovod without NCCL"
PYEOF
then
  patch_grace_period
  exit 0
fi
if "$PY" -c 'import horovod' 2>/dev/null; then
  say "the installed Horovod lacks Gloo or NCCL; rebuilding it"
  "$PY" -m pip uninstall -y -q horovod
fi

say "building horovod==$VERSION from source (3-6 minutes on 2 cores, more with CUDA)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -n "${WHEELHOUSE:-}" ]; then
  [ -f "$WHEELHOUSE/horovod-$VERSION.tar.gz" ] || {
    say "no horovod-$VERSION.tar.gz in the wheelhouse $WHEELHOUSE (make wheelhouse puts it there)" >&2; exit 1; }
  cp "$WHEELHOUSE/horovod-$VERSION.tar.gz" "$WORK/"
else
  "$PY" -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$WORK"
fi
tar -xzf "$WORK"/horovod-$VERSION.tar.gz -C "$WORK"
SRC="$WORK/horovod-$VERSION"
XLA_SRC="$SRC/horovod/tensorflow/xla_mpi_ops.cc"
grep -q '^#if TENSORFLOW_VERSION >= 2006000000' "$XLA_SRC" || {
  say "unexpected source: the XLA guard in $XLA_SRC was not found" >&2; exit 1; }
sed -i 's/^#if TENSORFLOW_VERSION >= 2006000000/#if 0  \/\/ glow-tf: XLA ops compiled out for TF >= 2.19/' "$XLA_SRC"

export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
export HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=gloo
if [ "$TF_CUDA" != 0 ]; then
  [ "$SITE_NVIDIA" != - ] || { say "the CUDA build of TensorFlow but no nvidia wheels beside it" >&2; exit 1; }
  if ! NVCC=$(find_nvcc "$TF_CUDA" "$SITE_NVIDIA"); then
    say "no CUDA $TF_CUDA nvcc (HOROVOD_CUDA_HOME, CUDA_HOME, PATH, /usr/local/cuda*): the nvidia-cuda-nvcc-cu$TF_CUDA"
    say "wheel has ptxas only, so Horovod's kernels are built with the CUDA 13 compiler wheels; its GPU"
    say "operations then need an NVIDIA driver >= 580. A CUDA $TF_CUDA toolkit avoids that: set HOROVOD_CUDA_HOME."
    "$PY" -m pip install -q "${PIP_OFFLINE[@]}" --no-deps --target "$WORK/cuda-tools" \
      "${CUDA_TOOLS[@]/%/==$CUDA_TOOLS_VERSION}"
    NVCC=$(GLOW_CUDA_SEARCH="" HOROVOD_CUDA_HOME="" CUDA_HOME="" PATH=/usr/bin:/bin find_nvcc 13 "$WORK/cuda-tools/nvidia") || {
      say "the CUDA 13 compiler wheels hold no working nvcc" >&2; exit 1; }
    # nvcc's profile links from lib64/, the wheels put the libraries in lib/.
    [ -e "$(cuda_home "$NVCC")/lib64" ] || ln -s lib "$(cuda_home "$NVCC")/lib64"
    unversioned_links "$(cuda_home "$NVCC")/lib"
  fi
  export HOROVOD_CUDA_HOME
  HOROVOD_CUDA_HOME=$(cuda_home "$NVCC")
  export HOROVOD_BUILD_CUDA_CC_LIST
  HOROVOD_BUILD_CUDA_CC_LIST=$(cuda_archs "$("$NVCC" --list-gpu-code)")
  nccl_view "$SITE_NVIDIA" "$WORK/nccl"
  export HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_LINK=SHARED HOROVOD_NCCL_HOME="$WORK/nccl"
  export HOROVOD_NCCL_INCLUDE="$WORK/nccl/include" HOROVOD_NCCL_LIB="$WORK/nccl/lib"
  # TF >= 2.18 no longer exports stream_executor::gpu::AsGpuStreamValue, which Horovod's GPU ops declare
  # and call to get TensorFlow's CUDA stream: define it inline, from the stream's platform handle.
  OPS_SRC="$SRC/horovod/tensorflow/mpi_ops.cc"
  grep -q '^GpuStreamHandle AsGpuStreamValue(Stream\* stream);$' "$OPS_SRC" || {
    say "unexpected source: the AsGpuStreamValue declaration in $OPS_SRC was not found" >&2; exit 1; }
  sed -i 's|^GpuStreamHandle AsGpuStreamValue(Stream\* stream);$|// glow-tf: AsGpuStreamValue is defined below|' "$OPS_SRC"
  sed -i '0,/^#endif \/\/ TENSORFLOW_VERSION >= 2011000000$/s//&\nnamespace stream_executor { namespace gpu {  \/\/ glow-tf\ninline GpuStreamHandle AsGpuStreamValue(::stream_executor::Stream* stream) {\n  return static_cast<GpuStreamHandle>(stream->platform_specific_handle().stream);\n} }  \/\/ namespace gpu\n}  \/\/ namespace stream_executor/' "$OPS_SRC"
  grep -q 'platform_specific_handle().stream' "$OPS_SRC" || {
    say "unexpected source: no place for AsGpuStreamValue in $OPS_SRC" >&2; exit 1; }
  # The kernels' C++ standard: Horovod asks for C++11, which CUDA 13's headers no longer accept.
  sed -i 's/set(CMAKE_CUDA_STANDARD 11)/set(CMAKE_CUDA_STANDARD 17)/' "$SRC/horovod/common/ops/cuda/CMakeLists.txt"
  # setup.py runs HOROVOD_CMAKE; this one adds the rpath to the configure step.
  RPATH=$(horovod_rpath)
  cat > "$WORK/cmake" <<EOF
#!/bin/sh
case "\$1" in --build|--version) exec cmake "\$@" ;; esac
exec cmake "\$@" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=${RPATH//:/;}'
EOF
  chmod +x "$WORK/cmake"
  export HOROVOD_CMAKE="$WORK/cmake"
  say "CUDA: $("$NVCC" --version | tail -n 2 | head -n 1) at $HOROVOD_CUDA_HOME; architectures $HOROVOD_BUILD_CUDA_CC_LIST (+PTX for the last); NCCL from $SITE_NVIDIA/nccl"
fi
MAKEFLAGS="-j$(nproc)" "$PY" -m pip install "${PIP_OFFLINE[@]}" --no-cache-dir --no-build-isolation "$SRC"
patch_grace_period
"$PY" - "$TF_CUDA" <<'PYEOF'
import sys
import horovod.tensorflow as hvd
print(f"[install_horovod] ok, gloo: {bool(hvd.gloo_built())}, nccl: {bool(hvd.nccl_built())}, cuda: {bool(hvd.cuda_built())}")
if sys.argv[1] != "0" and not (hvd.nccl_built() and hvd.cuda_built()):
    sys.exit("[install_horovod] the CUDA build of TensorFlow, but Horovod was built without NCCL or CUDA")
PYEOF
