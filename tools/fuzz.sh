#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a fixed budget with libFuzzer, keeping a
# corpus per target, and reports executions, corpus size and crashes.
#
# Usage: tools/fuzz.sh [--short] [--seconds N] [TARGET...]
#   --short      10 s per target (CI); the default is 300 s per target.
#   --seconds N  any other budget per target.
# The corpus lives in fuzz/corpus/TARGET (kept between runs, not committed), seeded from
# fuzz/seeds/TARGET (committed). A crash leaves its input in fuzz/artifacts/TARGET and makes
# the script fail; reproduce it with `cargo fuzz run -O TARGET fuzz/artifacts/TARGET/crash-…`.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); stable Rust is enough, with
# RUSTC_BOOTSTRAP=1 for the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=300
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --short) seconds=10 ;;
    --seconds) seconds=${2:?}; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
    esac
    shift
done
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(ls fuzz/fuzz_targets | sed -n 's/\.rs$//p' | sort)
fi
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz not found: cargo install cargo-fuzz --locked" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1

(cd fuzz && cargo fuzz build -O >/dev/null)

report=()
failed=0
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    marker=$(mktemp)
    log=$(mktemp)
    status=ok
    if ! (cd fuzz && cargo fuzz run -O "$t" "corpus/$t" -- \
            -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$log" 2>&1); then
        status=CRASH
        failed=1
        tail -n 40 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1 | grep -Eo '[0-9]+' || true)
    files=$(find "$corpus" -type f | wc -l)
    crashes=$(find "fuzz/artifacts/$t" -type f -newer "$marker" | wc -l)
    report+=("| $t | ${seconds} s | ${execs:-?} | ${rate:-?}/s | ${cov:-?} | $files | $crashes | $status |")
    rm -f "$log" "$marker"
done

echo
echo "| target | budget | executions | rate | coverage (edges) | corpus files | new crash inputs | result |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${report[@]}"
exit "$failed"
