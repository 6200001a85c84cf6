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
# Needs cargo-fuzz (installed here with `cargo install --locked` when missing) and
# libFuzzer's nightly-only compiler flags, which RUSTC_BOOTSTRAP=1 enables on a stable
# toolchain. No sanitizer: the code under test is safe Rust, whose failures are panics,
# and the run is about twice as fast without one. Builds go to $CARGO_TARGET_DIR if set,
# else fuzz/target.
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

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

cd "$root"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz smoke: building ${targets[*]}"
cargo fuzz build --sanitizer none

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
    cargo fuzz run --sanitizer none "$target" "$new" "$corpus" -- "${args[@]}" >"$log" 2>&1
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
