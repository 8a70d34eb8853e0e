#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each; FUZZ_SECONDS=n
# to change). Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# The corpus of each target starts from the committed format fixtures
# (tests/fixtures); crashes are written to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
targets="${*:-wal_record wal_segment state_snapshot checkpoint_metadata}"
fixtures=../tests/fixtures
seed() {
    case "$1" in
        wal_segment) echo "$fixtures"/wal/v1/*.wal ;;
        state_snapshot) echo "$fixtures"/state/v1/*.hwstate "$fixtures"/checkpoint/v1/*/*.hwstate ;;
        checkpoint_metadata) echo "$fixtures"/checkpoint/v1/*/metadata.json ;;
        *) ;;
    esac
}
for target in $targets; do
    mkdir -p "corpus/$target"
    for file in $(seed "$target"); do
        cp "$file" "corpus/$target/seed-$(basename "$(dirname "$file")")-$(basename "$file")"
    done
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536
done
