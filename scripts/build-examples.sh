#!/usr/bin/env bash
# Compile every examples/*.c to OUTDIR/*.o (default examples/build), and the verifier's corpus
# examples/corpus/*.c to OUTDIR/corpus/*.o, as committed in the repository.
#   scripts/build-examples.sh [OUTDIR]
# Compiler and flags: scripts/compile-bpf.sh (CLANG, MCPU).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-$root/examples/build}"
bash scripts/compile-bpf.sh "$out" examples/*.c examples/sqlite/*.c
exec bash scripts/compile-bpf.sh "$out/corpus" examples/corpus/*.c
