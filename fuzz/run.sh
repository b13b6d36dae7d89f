#!/bin/sh
# Fuzzes TARGET for SECONDS, starting from its checked-in seeds:
#
#   fuzz/run.sh TARGET SECONDS [LIBFUZZER_FLAGS...]
#
# runs (from fuzz/)
#
#   cargo +nightly fuzz run TARGET corpus/TARGET seeds/TARGET -- -max_total_time=SECONDS ...
#
# (e.g. `fuzz/run.sh server 1800 -max_len=300000` lets inputs grow past
# the element limit, where the heap budget of the role targets bites)
# libFuzzer reads every corpus directory given and writes new inputs to
# the first only: corpus/TARGET (ignored by git) grows, seeds/TARGET
# (checked in) is read and left alone. Crashes go to artifacts/TARGET/.
# At the end it prints the executions, their rate, the coverage and the
# findings.
set -eu
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
shift 2
cd "$(dirname "$0")"
[ -d "seeds/$target" ] || { echo "no seeds/$target" >&2; exit 2; }
mkdir -p "corpus/$target" "artifacts/$target"
log="artifacts/$target/run-$(date +%Y%m%d-%H%M%S).log"
before=$(ls "artifacts/$target" | grep -cv '\.log$' || true)
status=0
cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "$@" >"$log" 2>&1 || status=$?
after=$(ls "artifacts/$target" | grep -cv '\.log$' || true)
echo "== $target, ${seconds}s (log: fuzz/$log)"
grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' "$log" || true
grep -E '#[0-9]+.*(DONE|INITED)' "$log" | tail -2 || true
echo "corpus: $(ls "corpus/$target" | wc -l) new inputs; seeds: $(ls "seeds/$target" | wc -l)"
echo "findings: $((after - before)) new in fuzz/artifacts/$target/ (exit status $status)"
grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" | head -5 || true
exit "$status"
