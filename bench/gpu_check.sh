#!/usr/bin/env bash
# The one-call GPU check: the device=cuda tests (pytest -m cuda), BALA and Burer-Monteiro ALM with device=cuda on
# G60 and on a generated 10^6-vertex graph, ResNet-18 training images/s at batch 512 with bf16 autocast for
# `unconstrained` vs `ema_alm`, and (with two or more GPUs) the 2-process NCCL check of synchronised duals.
# Writes bench/results/gpu.md (and copies it to $OUT when that is set). At most about 7 minutes on one H200: each
# part has its own wall limit and the whole stays under GPU_CHECK_BUDGET_S (default 450 s). Python: $PYTHON, else
# .venv/bin/python where it exists, else python3 (the GPU machine's own).
#
#   bench/gpu_check.sh                 on a machine with a CUDA GPU
#   bench/gpu_check.sh --dry-run       the same steps on the CPU at toy sizes (G14, 1000 vertices, a small CNN, the
#                                      cuda tests' quick bodies on CPU tensors): checks the script without a GPU
#   bench/gpu_check.sh --out FILE      write the table elsewhere (a dry run's default: $TMPDIR/gpu_dry_run.md)
#
# The GPU machine (a copy of the working tree, its own python3 with torch, torchvision, numba, scipy, rich,
# typer, pytest, PyYAML; no package index) lacks hydra-core, omegaconf and antlr4, and may have a setuptools too
# old to build this package (it needs >= 77). Before the call, here, once:
#
#   printf '/.whl/\n/.gpu/\n' >> "$(git rev-parse --git-common-dir)/info/exclude"
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.8 omegaconf==2.3.1 setuptools==80.9.0
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # an sdist only: built here (pure Python)
#   mkdir -p .gpu && cp ../shared/data/gset_rudy/G60.txt .gpu/               # ../shared does not travel
#
# then one device call: command "bash bench/gpu_check.sh", carry [".whl", ".gpu"], timeout_s 540.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
DRY=0
OUT_MD=
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT_MD=${2:-}; shift ;;
        *) echo "gpu_check: unknown argument $1 (expected --dry-run, --out FILE)" >&2; exit 2 ;;
    esac
    shift
done
# A dry run's table measures nothing of a GPU: by default it goes to /tmp, not over bench/results/gpu.md.
[ -z "$OUT_MD" ] && { [ $DRY = 1 ] && OUT_MD=${TMPDIR:-/tmp}/gpu_dry_run.md || OUT_MD=bench/results/gpu.md; }
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
START=$(date +%s)

# Carried wheels (the device machine has no index): installed beside the machine's own packages.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl \
        || { echo "gpu_check: installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# Without an install, alm_bench.conf (the configs: conf/ in the tree) is not importable: install the tree
# editable, as `make install` does (setuptools >= 77 from the carried wheels builds it; nothing is fetched).
if ! (cd /tmp && $PY -c "import alm_bench.conf" 2>/dev/null); then
    $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . \
        || { echo "gpu_check: pip install -e . failed (is setuptools>=77 among the carried wheels?)" >&2; exit 1; }
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import alm_bench.conf, hydra, omegaconf, torch" \
    || { echo "gpu_check: alm_bench or its dependencies do not import (see the header for the wheels)" >&2; exit 1; }

# 1. The device=cuda tests. The dry run runs their quick bodies on CPU tensors.
if [ $DRY = 1 ]; then
    TESTS_LIMIT=120
    ALM_BENCH_CUDA_TESTS_DEVICE=cpu timeout $TESTS_LIMIT $PY -m pytest -q -p no:cacheprovider -m "cuda and not slow" \
        tests/test_cuda.py --junitxml="$WORK/junit.xml"
else
    TESTS_LIMIT=120
    timeout $TESTS_LIMIT $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py --junitxml="$WORK/junit.xml"
fi
echo "gpu_check: tests done after $(( $(date +%s) - START )) s"

# 2-4. Conic runs, training throughput, the table.
ARGS=(--junit "$WORK/junit.xml" --out "$OUT_MD" --started "$START")
[ $DRY = 1 ] && ARGS+=(--dry-run)
$PY -m bench.gpu_check "${ARGS[@]}"
STATUS=$?
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] && [ -f "$OUT_MD" ]; then cp "$OUT_MD" "$OUT/"; fi
rm -rf "$WORK"
echo "gpu_check: finished after $(( $(date +%s) - START )) s, table in $OUT_MD"
exit $STATUS
