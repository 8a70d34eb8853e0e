#!/usr/bin/env bash
# The long crash run (not in CI): every crash point of the crash suite under
# SEEDS different seeds (other torn images and recovery crash points each
# time), and KILLS real SIGKILLs of a committing child process.
#
#   SEEDS=8 KILLS=1000 scripts/crash-long-run.sh
#
# Prints each test's own summary line; the totals in docs/TESTING.md are the
# sums of those lines. Any failure stops the run and prints the seed that
# reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-8}
KILLS=${KILLS:-1000}
# The crash suite is one test binary (tests/crash), the kill test another
# (tests/process_kill, its test crash_process_kill).
cargo test --release --no-run --test crash --test process_kill
LOG=${LOG:-target/crash-long-run.log}
: > "$LOG"
for seed in $(seq 1 "$SEEDS"); do
  echo "== seed $seed" | tee -a "$LOG"
  HIGHWATER_CRASH_EXHAUSTIVE=1 HIGHWATER_CRASH_SEED=$seed cargo test -q --release \
    --test crash -- crash_consistency crash_io_failures crash_damage crash_properties \
    --nocapture >>"$LOG" 2>&1 \
    || { echo "FAILED at seed $seed: see $LOG"; exit 1; }
done
echo "== $KILLS kills" | tee -a "$LOG"
HIGHWATER_CRASH_KILLS=$KILLS cargo test -q --release --test process_kill \
  -- crash_process_kill --nocapture >>"$LOG" 2>&1 || { echo "FAILED in the kill test: see $LOG"; exit 1; }
grep -E "^seed|SIGKILL|crash images|flips|cuts|operations" "$LOG"
