#!/usr/bin/env bash
# CI's fuzz smoke run: builds every target in fuzz/ and runs each one for a bounded time
# from the committed corpus (fuzz/corpus/<target>/, read only: new inputs go to a scratch
# folder), failing on any crash, panic, timeout or out-of-memory. Prints, per target,
# how many inputs ran.
#
#   bash fuzz/smoke.sh                     # 20 s per target
#   FUZZ_SMOKE_SECONDS=60 bash fuzz/smoke.sh
#   bash fuzz/smoke.sh config webhook      # only these targets
#
# Builds with plain cargo and the compiler flags cargo-fuzz passes (coverage counters,
# compare tracing, `--cfg fuzzing`), so CI does not have to compile cargo-fuzz itself;
# `--target` keeps those flags off build scripts and proc macros, as cargo-fuzz does.
# The `smoke` profile (fuzz/Cargo.toml) is optimised lightly and has no debug info: it
# builds in about half the time of cargo-fuzz's release build, and runs fast enough for
# a smoke. No sanitizer: the code under test is safe Rust, whose failures are panics.
# RUSTC_BOOTSTRAP=1 lets a stable toolchain take libFuzzer's flags. Builds go to
# $CARGO_TARGET_DIR if set, else fuzz/target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SMOKE_SECONDS:-20}"
cargo_fuzz_version="0.13.2"
case "$seconds" in
'' | *[!0-9]* | 0)
    echo "fuzz smoke: FUZZ_SMOKE_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

cd "$here"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^deploybot-fuzz$')
fi

echo "fuzz smoke: building ${targets[*]}"
bins=()
for target in "${targets[@]}"; do bins+=(--bin "$target"); done
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
    cargo build --locked --profile smoke --target "$triple" "${bins[@]}"
bin="$CARGO_TARGET_DIR/$triple/smoke"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
summary=()
for target in "${targets[@]}"; do
    corpus="$here/corpus/$target"
    dict="$here/dict/$target.dict"
    new="$scratch/$target/new"
    artifacts="$scratch/$target/artifacts/"
    log="$scratch/$target.log"
    mkdir -p "$new" "$artifacts" "$corpus"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts")
    [ -f "$dict" ] && args+=(-dict="$dict")
    echo "fuzz smoke: $target for ${seconds}s from $(ls "$corpus" | wc -l) corpus inputs"
    set +e
    "$bin/$target" "${args[@]}" "$new" "$corpus" >"$log" 2>&1
    status=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
    if [ "$status" -ne 0 ]; then
        failed=1
        summary+=("$target: FAILED (exit $status) after ${runs:-?} runs")
        echo "fuzz smoke: $target FAILED; the end of its log:"
        tail -60 "$log"
        for crash in "$artifacts"*; do
            [ -f "$crash" ] || continue
            echo "fuzz smoke: reproducer $(basename "$crash") (base64):"
            base64 -w0 "$crash"
            echo
        done
    else
        summary+=("$target: ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}, no crash")
    fi
done

echo "fuzz smoke summary:"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzz smoke: FAILED"
    exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
