#!/usr/bin/env bash
# The GPU checks of elim in one command, for the day a GPU is lent (docs/scaling.md):
# step times per paper backbone (fp32 and bf16), Sinkhorn B=9 x k=10..256, a 16-mixed training
# run and, with two GPUs, an NCCL DDP run. A few minutes; writes one JSON report.
#
#   scripts/gpu_check.sh [REPORT.json] [elim bench gpu options, e.g. --repeats 5]
#   scripts/gpu_check.sh check.json --dry-run     # the same script on a CPU, toy sizes
#
# Runs from a checkout without installing: src/ goes first on PYTHONPATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
report="${1:-gpu_check.json}"
shift || true
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m elim.cli bench gpu --out "$report" "$@"
