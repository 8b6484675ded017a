#!/usr/bin/env bash
# Compile the bench:vm kernels (src/bench/kernels/*.c but the native harness.c) to OUTDIR/*.o
# (default src/bench/kernels/build), as committed in the repository.
#   scripts/build-bench-kernels.sh [OUTDIR]
# Compiler and flags: scripts/compile-bpf.sh (CLANG, MCPU). The objects are reproducible, so
# src/bench/kernels.test.ts can tell a stale committed object from a fresh build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sources=()
for src in src/bench/kernels/*.c; do
  [ "$(basename "$src")" = harness.c ] || sources+=("$src")
done
exec bash scripts/compile-bpf.sh "${1:-$root/src/bench/kernels/build}" "${sources[@]}"
