# Functions of scripts/install_horovod.sh that download nothing and run no Python: where the CUDA
# compiler and NCCL are, and which GPU architectures to build. Sourced by that script and by
# tests/test_install.py, which runs them on a fake folder tree.
#
# The pip wheels that tensorflow[and-cuda] brings (nvidia-cuda-runtime-cu12, nvidia-nccl-cu12, ...) lie
# under site-packages/nvidia/<part>/{include,lib}. Their nvidia-cuda-nvcc-cu12 holds ptxas and libdevice
# only, for XLA; no CUDA 12 wheel holds nvcc itself. CUDA 13 ships a complete nvcc as wheels
# (nvidia-cuda-nvcc, nvidia-cuda-crt, nvidia-nvvm, nvidia-cuda-runtime), under nvidia/cu13/.

# The architectures glow-tf builds Horovod's kernels for: V100 (7.0), T4 (7.5), A100 (8.0), A10/RTX 30
# (8.6), L4/RTX 40 (8.9), H100 (9.0). Horovod adds PTX for the newest one, which newer GPUs compile at load.
GLOW_CUDA_ARCHS=${GLOW_CUDA_ARCHS:-"70 75 80 86 89 90"}
# Toolkits installed the usual way, searched after HOROVOD_CUDA_HOME, CUDA_HOME and the PATH.
GLOW_CUDA_SEARCH=${GLOW_CUDA_SEARCH:-"/usr/local/cuda /usr/local/cuda-* /opt/cuda /usr"}

# nvcc_release NVCC: "12.9" from `nvcc --version` ("Cuda compilation tools, release 12.9, V12.9.86").
nvcc_release() {
  "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}

# find_nvcc MAJOR [SITE_NVIDIA]: the first nvcc of CUDA MAJOR among HOROVOD_CUDA_HOME, CUDA_HOME, the PATH,
# the wheels under SITE_NVIDIA, then GLOW_CUDA_SEARCH. Prints its path; returns 1 when there is none.
find_nvcc() {
  local major=$1 site=${2:-} candidate release dir
  local candidates=()
  [ -n "${HOROVOD_CUDA_HOME:-}" ] && candidates+=("$HOROVOD_CUDA_HOME/bin/nvcc")
  [ -n "${CUDA_HOME:-}" ] && candidates+=("$CUDA_HOME/bin/nvcc")
  candidate=$(command -v nvcc 2>/dev/null || true)
  [ -n "$candidate" ] && candidates+=("$candidate")
  [ -n "$site" ] && candidates+=("$site/cuda_nvcc/bin/nvcc" "$site/cu$major/bin/nvcc")
  for dir in $GLOW_CUDA_SEARCH; do candidates+=("$dir/bin/nvcc"); done
  for candidate in "${candidates[@]}"; do
    [ -x "$candidate" ] || continue
    release=$(nvcc_release "$candidate")
    if [ "${release%%.*}" = "$major" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# cuda_home NVCC: the toolkit folder of an nvcc (the parent of its bin/), symlinks resolved.
cuda_home() {
  local bin
  bin=$(cd "$(dirname "$1")" && pwd -P)
  dirname "$bin"
}

# cuda_archs NVCC_LIST_GPU_CODE_OUTPUT: the comma-separated list of GLOW_CUDA_ARCHS that this nvcc builds,
# given the output of `nvcc --list-gpu-code` (sm_75 sm_80 ...). The ones it cannot build are named on
# stderr; none at all is an error.
cuda_archs() {
  local supported=" $(echo "$1" | tr -s ' \n' '  ' | sed 's/sm_//g') " wanted kept=() dropped=()
  for wanted in $GLOW_CUDA_ARCHS; do
    case "$supported" in
      *" $wanted "*) kept+=("$wanted") ;;
      *) dropped+=("$wanted") ;;
    esac
  done
  if [ ${#kept[@]} = 0 ]; then
    echo "[install_horovod] this nvcc builds none of the architectures $GLOW_CUDA_ARCHS (it lists: $1)" >&2
    return 1
  fi
  [ ${#dropped[@]} = 0 ] || echo "[install_horovod] this nvcc cannot build sm_${dropped[*]}: no kernels for those GPUs" >&2
  (IFS=,; echo "${kept[*]}")
}

# nccl_view SITE_NVIDIA DEST: NCCL's headers and libraries from the nvidia-nccl-cu* wheel, as DEST/include
# and DEST/lib, with the unversioned libnccl.so the linker looks for (the wheel has libnccl.so.2 only).
nccl_view() {
  local site=$1 dest=$2 lib
  if [ ! -f "$site/nccl/include/nccl.h" ]; then
    echo "[install_horovod] no NCCL wheel under $site (expected nccl/include/nccl.h, from nvidia-nccl-cu12)" >&2
    return 1
  fi
  mkdir -p "$dest/lib"
  ln -sfn "$site/nccl/include" "$dest/include"
  for lib in "$site"/nccl/lib/libnccl.so.*; do
    [ -e "$lib" ] || continue
    ln -sf "$lib" "$dest/lib/$(basename "$lib")"
    ln -sf "$lib" "$dest/lib/libnccl.so"
  done
  if [ ! -e "$dest/lib/libnccl.so" ]; then
    echo "[install_horovod] no libnccl.so.* under $site/nccl/lib" >&2
    return 1
  fi
}

# unversioned_links DIR: libfoo.so -> libfoo.so.N beside each libfoo.so.N that has none; CMake's
# find_library and the linker look for the unversioned name, the wheels carry the versioned one only.
unversioned_links() {
  local lib base
  for lib in "$1"/lib*.so.*; do
    [ -e "$lib" ] || continue
    base=$(basename "$lib")
    base=${base%%.so.*}.so
    [ -e "$1/$base" ] || ln -s "$(basename "$lib")" "$1/$base"
  done
}

# horovod_rpath: where Horovod's libraries (site-packages/horovod/<framework>/*.so) find the NCCL and CUDA
# runtime wheels at import, relative to themselves, so no LD_LIBRARY_PATH is needed.
horovod_rpath() {
  echo '$ORIGIN/../../nvidia/nccl/lib:$ORIGIN/../../nvidia/cuda_runtime/lib'
}
