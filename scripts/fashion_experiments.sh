#!/usr/bin/env bash
# Issue 5's measured results on Fashion-MNIST, as run on a 2-core CPU machine (about an hour):
#   * fashion_glow: the main run, then glow_tf.tools.evaluate on all 10,000 test images;
#   * the six-way ablation (reverse / shuffle / 1x1 conv x additive / affine) at equal images processed,
#     then glow_tf.tools.evaluate on the 10,000 test images and a plot of test bits/dim against images.
# The main run and the ablation runs go side by side, one CPU thread each. Results: logs/experiments/.
#
# Usage: scripts/fashion_experiments.sh [main|ablation|all]   (default all; make install first).
# A killed run resumes from its last checkpoint when started again (train.py --resume is on by default).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-logs/experiments}
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
mkdir -p "$OUT"

main_run() {
  "$PY" train.py --preset fashion_glow --logdir "$OUT/fashion_glow" >> "$OUT/fashion_glow.log" 2>&1
  "$PY" -m glow_tf.tools.evaluate "$OUT/fashion_glow" --n_test 10000 --draws 4 \
    --output "$OUT/fashion_glow_eval.json" >> "$OUT/fashion_glow.log" 2>&1
}

ablation_runs() {
  local dirs=()
  for coupling in additive affine; do
    for perm in reverse shuffle 1x1; do
      name=fashion_ablation_${perm}_${coupling}
      "$PY" train.py --preset "$name" --logdir "$OUT/$name" >> "$OUT/$name.log" 2>&1
      "$PY" -m glow_tf.tools.evaluate "$OUT/$name" --n_test 10000 --draws 2 --no_reconstruction \
        --output "$OUT/${name}_eval.json" >> "$OUT/$name.log" 2>&1
      dirs+=("$OUT/$name")
    done
  done
  "$PY" scripts/plot_logs.py "${dirs[@]}" --output "$OUT/fashion_ablation.png" \
    --labels reverse-additive shuffle-additive 1x1-additive reverse-affine shuffle-affine 1x1-affine \
    --title "Fashion-MNIST 28x28, depth 8 x 2 levels, width 64: test bits/dim"
}

case "${1:-all}" in
  main) main_run ;;
  ablation) ablation_runs ;;
  all) main_run & ablation_runs; wait ;;
  *) echo "usage: $0 [main|ablation|all]" >&2; exit 2 ;;
esac
