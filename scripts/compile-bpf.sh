#!/usr/bin/env bash
# Compile C sources to eBPF objects in OUTDIR, the way every committed object is built:
#   scripts/compile-bpf.sh OUTDIR SOURCE.c...      (paths relative to the repository root)
# Needs clang >= 14 with the BPF target (Debian: apt-get install -y clang llvm). CLANG overrides the
# compiler, MCPU the ISA version (v3 for the committed objects; v4 needs clang >= 18).
# -fdebug-prefix-map keeps the checkout's path out of the objects, so rebuilding from another
# directory gives the same bytes; -nostdinc proves include/nearbpf.h needs no system header.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
shift
clang="${CLANG:-clang}"
mcpu="${MCPU:-v3}"
mkdir -p "$out"
cd "$root"
for src in "$@"; do
  obj="$out/$(basename "$src" .c).o"
  "$clang" -O2 -g -target bpf -mcpu="$mcpu" -Wall -Werror -nostdinc -Iinclude -fdebug-prefix-map="$root"=. -c "$src" -o "$obj"
  echo "built $obj"
done
