#!/usr/bin/env bash
# The README's measured results on Fashion-MNIST, as run on a 2-core CPU machine:
#   * main (about an hour): fashion_glow, then glow_tf.tools.evaluate on all 10,000 test images;
#   * ablation (about 75 minutes, two runs at a time): the six-way ablation (reverse / shuffle / 1x1 conv x
#     additive / affine) with seeds 0, 1 and 2 at equal images processed, each then evaluated by
#     glow_tf.tools.evaluate on the 10,000 test images; then a plot of test bits/dim against images (mean
#     and band over the seeds) and scripts/ablation_table.py's table; SEEDS and JOBS change the seeds and
#     the number of runs at a time;
#   * deeper (not run yet; each run costs about twice an 8-step one): reverse against shuffle with additive
#     coupling at DEPTH (default 16) steps per level instead of 8, seeds SEEDS, evaluated the same way;
#     then the table beside the 8-step runs;
#   * bf16 (about 30 minutes): make train's run (--preset fashion_small) with --nn_dtype float32 and
#     bfloat16 side by side, seeds 0, 1 and 2, each evaluated on the 10,000 test images with its raw and
#     its Polyak-averaged weights and in the other precision; then scripts/bf16_table.py prints the table.
# main and ablation go side by side (all), one CPU thread each. Results: logs/experiments/.
#
# Usage: scripts/fashion_experiments.sh [main|ablation|deeper|all|bf16]   (default all; make install first).
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

ablation_run() {  # one cell of the ablation with one seed: $1 permutation, $2 coupling, $3 seed [$4 depth]
  local name=fashion_ablation_$1_$2_s$3 depth=()
  if [ -n "${4:-}" ]; then name=fashion_depth$4_$1_$2_s$3; depth=(--depth "$4"); fi
  "$PY" train.py --preset "fashion_ablation_$1_$2" --seed "$3" "${depth[@]}" --logdir "$OUT/$name" \
    >> "$OUT/$name.log" 2>&1
  "$PY" -m glow_tf.tools.evaluate "$OUT/$name" --n_test 10000 --draws 2 --no_reconstruction \
    --output "$OUT/${name}_eval.json" >> "$OUT/$name.log" 2>&1
  echo "$name done" >&2
}

ablation_runs() {  # the six cells x SEEDS (default 0 1 2), JOBS (default 2) runs at a time, one thread each
  local seed coupling perm
  for seed in ${SEEDS:-0 1 2}; do
    for coupling in additive affine; do
      for perm in reverse shuffle 1x1; do
        while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-2}" ]; do wait -n; done
        ablation_run "$perm" "$coupling" "$seed" &
      done
    done
  done
  wait
  "$PY" scripts/plot_logs.py --seeds "$OUT"/fashion_ablation_*_s*/ --panels additive affine \
    --output "$OUT/fashion_ablation.png" \
    --title "Fashion-MNIST 28x28, 2 levels x 8 steps, width 64: test bits/dim on 2,000 test images"
  "$PY" scripts/ablation_table.py "$OUT"/fashion_ablation_*_s*/
}

deeper_runs() {  # reverse against shuffle, additive, at DEPTH (default 16) steps per level, SEEDS, JOBS at a time
  local seed perm depth=${DEPTH:-16}
  for seed in ${SEEDS:-0 1 2}; do
    for perm in reverse shuffle; do
      while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-2}" ]; do wait -n; done
      ablation_run "$perm" additive "$seed" "$depth" &
    done
  done
  wait
  "$PY" scripts/ablation_table.py "$OUT"/fashion_ablation_{reverse,shuffle}_additive_s*/ "$OUT"/fashion_depth"$depth"_*_s*/
}

bf16_run() {  # one seed, one precision, on CPU core $3
  local name=fashion_small_$1_s$2 other
  other=$([ "$1" = float32 ] && echo bfloat16 || echo float32)
  taskset -c "$3" "$PY" train.py --preset fashion_small --nn_dtype "$1" --seed "$2" --logdir "$OUT/$name" \
    >> "$OUT/$name.log" 2>&1
  local evaluate=(taskset -c "$3" "$PY" -m glow_tf.tools.evaluate "$OUT/$name" --n_test 10000 --draws 1)
  "${evaluate[@]}" --output "$OUT/$name/eval_raw.json" >> "$OUT/$name.log" 2>&1
  "${evaluate[@]}" --ema --no_reconstruction --output "$OUT/$name/eval_ema.json" >> "$OUT/$name.log" 2>&1
  "${evaluate[@]}" --nn_dtype "$other" --no_reconstruction --output "$OUT/$name/eval_other.json" \
    >> "$OUT/$name.log" 2>&1
}

bf16_runs() {
  for seed in 0 1 2; do
    bf16_run float32 "$seed" 0 & bf16_run bfloat16 "$seed" 1; wait
  done
  "$PY" scripts/bf16_table.py "$OUT"
}

case "${1:-all}" in
  main) main_run ;;
  ablation) ablation_runs ;;
  deeper) deeper_runs ;;
  all) main_run & ablation_runs; wait ;;
  bf16) bf16_runs ;;
  *) echo "usage: $0 [main|ablation|deeper|all|bf16]" >&2; exit 2 ;;
esac
