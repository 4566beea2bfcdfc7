#!/usr/bin/env bash
# `make plots`: build/bench.json as SVG plots in docs/plots/ (shown in docs/benchmarks.md).
# The harness writes each plot's data (.dat) and gnuplot script (.gp); gnuplot draws them.
# gnuplot-nox is installed here when missing and root, as scripts/deps.sh does for its
# packages; only this target needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
json=${PLOTS_JSON:-build/bench.json}
out=${PLOTS_OUT:-docs/plots}

source scripts/packages.sh
need_command gnuplot gnuplot-nox
install_missing plots || exit 1
if [ ! -f "$json" ]; then
  echo "plots: no $json; run make bench first" >&2
  exit 1
fi

# The harness writes the scripts of the plots bench.json has figures for.
rm -f "$out"/*.gp
swift run lockstep-harness plots --json "$json" --out "$out"
for script in "$out"/*.gp; do
  name=$(basename "$script" .gp)
  (cd "$out" && gnuplot "$name.gp")
  echo "  GNUPLOT $out/$name.svg"
done
