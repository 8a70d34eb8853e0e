#!/usr/bin/env bash
# Side by side with the seed (LaminarDB 0.19.11's laminar-storage) and RocksDB
# (issue 20): builds benches/peers (a workspace of its own) in release mode and
# runs it. RocksDB is Debian's librocksdb-dev, linked through ROCKSDB_LIB_DIR,
# so no C++ is compiled; the rocksdb crate is 0.19 (librocksdb-sys 0.8,
# RocksDB 7.4.4's C API, a subset of Debian bookworm's 7.8.3). bindgen needs
# libclang (libclang-dev).
#
#   scripts/peer-bench.sh                      # every figure, 5 runs each
#   scripts/peer-bench.sh --runs 3 --only restore --only round
#   PEERS_DIR=/work/scratch scripts/peer-bench.sh
#
# Flags after the script name go to the binary: --dir DIR (or PEERS_DIR; must
# not be tmpfs; default /var/tmp/highwater-peers), --runs N, --keys N,
# --only FIG (append replay durable checkpoint restore mapped bytes round),
# --side ours|seed (one side only, for profiling).
set -euo pipefail
cd "$(dirname "$0")/../benches/peers"
need=()
[ -e /usr/lib/x86_64-linux-gnu/librocksdb.so ] || need+=(librocksdb-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 \
  || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  $SUDO apt-get install -y "${need[@]}"
fi
export ROCKSDB_LIB_DIR=${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}
unset ROCKSDB_STATIC
# CARGO_TARGET_DIR may be shared between checkouts (the dependencies are
# compiled once); the build and the copy of the binary hold a lock, so one
# checkout never runs a binary another checkout has just built.
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
bin="$target/highwater-peers.$$"
trap 'rm -f "$bin"' EXIT
flock "$target/.peer-bench.lock" sh -c \
  'cargo build --release && cp "$1/release/highwater-peers" "$2"' sh "$target" "$bin"
echo "machine: $(nproc) cores, $(uname -r); $(uptime)"
"$bin" "$@"
