#!/usr/bin/env bash
# Runs every fuzz target in build dir $1 for $2 seconds each, seeded from
# fuzz/corpus/<target>/ (kept read-only; new inputs go to a scratch directory).
# Fails if any target finds a crash.
set -euo pipefail
build=$1
secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$build"/fuzz/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets built"
  exit 1
fi
status=0
for t in "${targets[@]}"; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  scratch=$(mktemp -d)
  seeds=()
  [ -d "$root/fuzz/corpus/$name" ] && seeds+=("$root/fuzz/corpus/$name")
  dict=()
  [ -f "$root/fuzz/$name.dict" ] && dict=(-dict="$root/fuzz/$name.dict")
  echo "-- $name (${secs}s)"
  if ! "$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
      "${dict[@]}" -artifact_prefix="$scratch/" "$scratch" "${seeds[@]}" > "$scratch/log" 2>&1; then
    echo "FAILED: $name"; tail -50 "$scratch/log"; status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/log" | tr '\n' ' '; echo
  fi
  rm -rf "$scratch"
done
exit $status
