#!/bin/sh
# Builds the WebAssembly core (src/composefs/core.ts loads it) from the sources beside this script:
#   sh native/core/build.sh [OUT]    (default native/core/odh-core.wasm)
# Needs clang and wasm-ld (Debian: apt install clang lld). No libc: core-wasm.c supplies memory.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir/odh-core.wasm}
srcs=$(cd "$dir" && ls *.c | grep -v '^core-native\.c$' | sort)
cd "$dir"
# shellcheck disable=SC2086
clang --target=wasm32 -std=c11 -O2 -nostdlib -mbulk-memory -Wall -Wextra -Werror \
  -Iwasm -I. -Wl,--no-entry -Wl,-z,stack-size=1048576 -Wl,--strip-all \
  -o "$out" $srcs
