#!/usr/bin/env bash
# Runs every integration suite and sums their closing "N passed, M failed"
# lines into one, which is this script's last line.
set -uo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
passed=0
failed=0
status=0
for suite in run.sh trustlist.sh demo_query.sh crl.sh upstream.sh; do
    [[ -f $dir/$suite ]] || continue
    echo "=== $suite"
    out=$(mktemp)
    bash "$dir/$suite" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [[ -z $line ]]; then
        echo "=== $suite ended (exit $rc) without a summary line"
        failed=$((failed + 1))
        status=1
        continue
    fi
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    [[ $rc -eq 0 ]] || status=1
done
echo "$passed passed, $failed failed"
exit $status
