#!/bin/sh
# Copy the alert rules and the Grafana dashboard into the chart.
#
# Why: a Helm chart can only read files inside its own directory
# (.Files.Get), but the rules and the dashboard live (and are tested) in
# alerts/ and dashboards/ at the repository root. The chart ships copies;
# tests/integration/test_helm_chart.py fails when they drift apart.
# Run from anywhere: ./charts/seawall/sync-files.sh
set -eu
chart_dir=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$chart_dir/../.." && pwd)
for pair in "alerts/seawall.rules.yml:seawall.rules.yml" "dashboards/seawall.json:seawall.json"; do
    src="$repo_root/${pair%%:*}"
    dst="$chart_dir/files/${pair#*:}"
    if [ -f "$src" ]; then
        cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"
        echo "synced ${pair%%:*} -> charts/seawall/files/${pair#*:}"
    else
        echo "skipped ${pair%%:*}: not found" >&2
    fi
done
