#!/bin/sh
# Checks the example Prometheus config and runs the alert rule unit tests.
# usage: promtool_rules.sh CONFIG_DIR. Exits 77 (skipped) without promtool.
set -eu
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found in PATH; install Debian's prometheus package" >&2
    exit 77
fi
promtool check config "$1/prometheus.yml"
promtool test rules "$1/alerts_test.yml"
