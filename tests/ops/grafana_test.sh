#!/usr/bin/env bash
# deploy/grafana/tokenbroker.json: valid JSON whose every query is valid PromQL. (That every metric
# and label it queries is one the daemon exports is integration_dashboard, against a live daemon.)
# Usage: grafana_test.sh SOURCE_DIR BUILD_DIR   (after the ops_npm fixture)
set -euo pipefail
src=$1 build=$2
node "$src/tests/ops/validate_promql.cjs" "$src/deploy/grafana/tokenbroker.json" "$build/ops-npm"
