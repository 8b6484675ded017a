#!/usr/bin/env bash
# Compile every examples/*.c to OUTDIR/*.o (default examples/build), as committed in the repository.
#   scripts/build-examples.sh [OUTDIR]
# Compiler and flags: scripts/compile-bpf.sh (CLANG, MCPU).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
exec bash scripts/compile-bpf.sh "${1:-$root/examples/build}" examples/*.c examples/sqlite/*.c
