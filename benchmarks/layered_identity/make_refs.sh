#!/usr/bin/env bash
# Reference runs for issue 20: records before/after the restructuring must be bit-identical.
# usage: make_refs.sh REPO OUTDIR
set -euo pipefail
repo=$1; out=$2
py=$repo/.venv/bin/python; mc=$repo/.venv/bin/mcland
mkdir -p "$out"
cd "$repo"
$mc sample runs/quick.toml --out "$out/quick" --n 20000 --threads 2 --no-progress 2>&1 | tail -1 || $mc sample runs/quick.toml --out "$out/quick" --n 20000 --threads 2 | tail -1
$mc sample runs/paper.toml --out "$out/paper" --n 20000 --threads 2 2>&1 | tail -1
$mc dynamics runs/dynamics_quick.toml --out "$out/dyn" --threads 2 2>&1 | tail -1
$mc groundtruth runs/autoencoder.toml --out "$out/truth" 2>&1 | tail -1
# classify: points of runs/linnerud.toml (fixed data) with weights
$py "$(dirname "$0")/make_points.py" "$out"
$mc classify "$out/points.parquet" --data "$out/data.npz" --out "$out/cls" --threads 2 2>&1 | tail -1
$mc classify "$out/points.parquet" --data "$out/data.npz" --out "$out/cls_refine" --refine --threads 2 2>&1 | tail -1
