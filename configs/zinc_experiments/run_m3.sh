#!/usr/bin/env bash
# Issue 27's model-3 experiments at equal compute, one after another on one thread:
#   configs/zinc_experiments/run_m3.sh [OUT_DIR=runs/m3] [NAMES...]
# Each run writes OUT_DIR/<name>/model.pt (+ metrics.csv). A run that was stopped (session end,
# SIGTERM) is resumed from its checkpoint; a finished one is skipped. Needs `moldesign data zinc250k`.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/m3}"; shift || true
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(ctrl input both input_drop both_drop ctrl_drop)
PY="${PYTHON:-.venv/bin/python}"
for name in "${NAMES[@]}"; do
  cfg="configs/zinc_experiments/m3_$name.toml"; ckpt="$OUT/$name/model.pt"
  steps=514
  if [ "${name%_long}" != "$name" ]; then  # X_long continues the 0.6-epoch X run to 2 epochs (1,712 steps)
    steps=1712
    [ -f "$ckpt" ] || { mkdir -p "$OUT/$name"; cp "$OUT/${name%_long}/model.pt" "$ckpt"; }
  elif [ "${name%_cont}" != "$name" ]; then  # a long run: X_long's 2-epoch model toward the config's epochs
    steps=$("$PY" -c "import sys,tomllib; print(round(856 * tomllib.load(open(sys.argv[1],'rb'))['train']['epochs']))" "$cfg")
    seed="$OUT/${name%_cont}_long/model.pt"  # or the committed weights of an earlier session (no moments)
    [ -f "$seed" ] || seed="models/wip/m3_${name%_cont}.pt"
    [ -f "$ckpt" ] || { mkdir -p "$OUT/$name"; cp "$seed" "$ckpt"; }
  fi
  mkdir -p "$OUT/$name"
  if [ -f "$ckpt" ] && "$PY" -c "import sys,torch; c=torch.load(sys.argv[1],weights_only=True); s=c['train_state']; sys.exit(0 if s['step']>=int(sys.argv[2]) else 1)" "$ckpt" "$steps"; then
    echo "$name: finished, skipped"; continue
  fi
  resume=(); [ -f "$ckpt" ] && resume=(--resume "$ckpt")
  echo "$name: $(date -u +%T) start ${resume[*]}"
  OMP_NUM_THREADS=1 "$PY" cli.py train --config "$cfg" --out "$ckpt" "${resume[@]}" >> "$OUT/$name/train.log" 2>&1
  echo "$name: $(date -u +%T) done"
done
