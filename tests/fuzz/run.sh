#!/usr/bin/env bash
# Build every libFuzzer target (clang, ASan + UBSan, libraries instrumented)
# and run each for SECONDS (default 45) on a copy of its seed corpus.
# Fails on the first crash, leak, timeout or broken invariant.
#   tests/fuzz/run.sh [SECONDS]      (make fuzz: 600 s each)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-45}
build=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" >/dev/null
# a crash, leak or timeout input lands here, not in the checkout
artifacts=$build/artifacts
mkdir -p "$artifacts"
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c | sed 's/^fuzz_//')
	t=$build/tests/fuzz/fuzz_$name
	work=$(mktemp -d)
	cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
	echo "fuzz $name for ${secs}s"
	rc=0
	"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work" >"$work.log" 2>&1 || rc=$?
	grep -E 'stat::number_of_executed_units' "$work.log" || true
	if [ "$rc" != 0 ]; then
		tail -60 "$work.log"
		echo "fuzz target $name failed (input kept in $artifacts/)"
		exit 1
	fi
	rm -rf "$work" "$work.log"
done
