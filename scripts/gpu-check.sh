#!/usr/bin/env bash
# The GPU check (issue 18): the `gpu` test tier, the fast tier and the GPU benchmark rows, in under 13 minutes.
#
#   scripts/gpu-check.sh                                       # or: make gpu-check (uses .venv/bin/python)
#   PYTHON=python3 PYTHONPATH=/tmp/site scripts/gpu-check.sh   # torch preinstalled, the rest from carried wheels
#
# For a machine with a CUDA GPU and no network: it installs nothing. Its Python must import torch,
# pytorch_lightning, jsonargparse, hydra, pytest and this checkout's mnistctl with its configs
# (`pip install -e .`, or the wheels scripts/gpu-wheels.sh fetches, see ../shared/NOTES.md); it checks that first.
# Steps, each with a time budget (a step over its budget is stopped and reported as `timeout`):
#   gpu    pytest -m gpu                (GPU_CHECK_GPU_S, default 200 s, 440 s without the bench step; 141 s on an H200)
#   fast   pytest -m "not slow and not slurm and not gpu"  (GPU_CHECK_FAST_S, default 300 s)
#   bench  python -m benchmarks.gpu: the plain loop and mnistctl side by side on the GPU, `mnistctl test` and
#          `predict` beside plain scripts that do the same, a two-job sweep (GPU_CHECK_BENCH_S, default 240 s)
# GPU_CHECK_STEPS chooses and orders them (default "gpu fast bench", 740 s of budgets): a machine lent 10 minutes
# a command runs `GPU_CHECK_STEPS="gpu bench"`, then `GPU_CHECK_STEPS=fast`. With the bench step, the gpu step
# leaves out the test that runs the same benchmark (tests/test_bench_gpu.py, BENCH_TEST below): once is enough.
# Both test steps run in parallel with pytest-xdist when it is installed (GPU_CHECK_WORKERS processes, default 8;
# 0 for none): the tiny GPU runs share the one GPU, each in its own process.
# Logs and the benchmark's JSON go to $GPU_CHECK_DIR (default: a new temporary folder). A summary ends the output,
# naming every test that failed (also in a step stopped at its budget).
# Exit status: 0 every step passed; 1 a step failed or timed out; 2 no CUDA GPU; 3 the Python cannot run the check
# or GPU_CHECK_STEPS names no step, an unknown one or one twice.
set -uo pipefail

cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=python3
    [[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
fi
OUT="${GPU_CHECK_DIR:-$(mktemp -d -t mnistctl-gpu-check-XXXXXX)}"
mkdir -p "$OUT"
WORKERS="${GPU_CHECK_WORKERS:-8}"
read -r -a STEPS <<<"${GPU_CHECK_STEPS:-gpu fast bench}"
seen=" "
for name in "${STEPS[@]}"; do
    case $name in
        gpu | fast | bench) ;;
        *) echo "gpu-check: unknown step '$name' in GPU_CHECK_STEPS; the steps are gpu, fast and bench" >&2 && exit 3 ;;
    esac
    if [[ "$seen" == *" $name "* ]]; then
        echo "gpu-check: step '$name' is named twice in GPU_CHECK_STEPS" >&2 && exit 3
    fi
    seen+="$name "
done
if ((${#STEPS[@]} == 0)); then
    echo "gpu-check: GPU_CHECK_STEPS names no step; the steps are gpu, fast and bench" >&2 && exit 3
fi

if ! device=$("$PYTHON" -c 'import torch; assert torch.cuda.is_available(); print(torch.cuda.get_device_name(0))' 2>/dev/null); then
    echo "gpu-check: no CUDA GPU visible to $PYTHON (torch.cuda.is_available() is false); nothing was run" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import pytest, pytorch_lightning, jsonargparse, hydra
from mnistctl.config_files import packaged_config
assert packaged_config("gpu.yaml").is_file(), "mnistctl without its configs"' >"$OUT/preflight.log" 2>&1; then
    echo "gpu-check: $PYTHON cannot run the check: $(tail -n 1 "$OUT/preflight.log")" >&2
    echo "gpu-check: install mnistctl editable with its test tools, or the wheels of scripts/gpu-wheels.sh" >&2
    exit 3
fi
parallel=()
BENCH_TEST=tests/test_bench_gpu.py::test_on_a_gpu_both_rows_run_and_reach_99_percent
gpu_args=(-m gpu) gpu_budget=440  # that test runs the whole benchmark: the bench step's 240 s more
if [[ "$seen" == *" bench "* ]]; then
    gpu_args+=(--deselect "$BENCH_TEST") gpu_budget=200
fi
if [[ "$WORKERS" != 0 ]] && "$PYTHON" -c 'import xdist' 2>/dev/null; then
    parallel=(-n "$WORKERS")
fi

names=() statuses=() seconds=()
step() {  # step NAME BUDGET_S COMMAND...: runs it with a time budget, logs to $OUT/NAME.log
    local name=$1 budget=$2 start rc status
    shift 2
    echo "== $name (budget ${budget}s): $*"
    start=$(date +%s)
    timeout --signal=TERM --kill-after=10 "$budget" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=passed ;;
        124 | 137) status=timeout ;;
        *) status="failed (exit $rc)" ;;
    esac
    tail -n 3 "$OUT/$name.log"
    names+=("$name") statuses+=("$status") seconds+=($(($(date +%s) - start)))
}

total_start=$(date +%s) budget=0
for name in "${STEPS[@]}"; do
    # -v: a line per test as it ends, so a failure is named in the log even when its step runs out of time.
    case $name in
        gpu) s=${GPU_CHECK_GPU_S:-$gpu_budget} && step gpu "$s" "$PYTHON" -m pytest -v -p no:cacheprovider "${parallel[@]}" "${gpu_args[@]}" ;;
        fast) s=${GPU_CHECK_FAST_S:-300} && step fast "$s" "$PYTHON" -m pytest -v -p no:cacheprovider "${parallel[@]}" \
            -m "not slow and not slurm and not gpu" ;;
        bench) s=${GPU_CHECK_BENCH_S:-240} && step bench "$s" "$PYTHON" -m benchmarks.gpu --json "$OUT/bench_gpu.json" \
            --workdir "$OUT/bench" ;;
    esac
    budget=$((budget + s))
done

echo
echo "gpu-check summary: $device, $("$PYTHON" -c 'import torch; print("torch", torch.__version__)'), logs in $OUT"
failed=0
for i in "${!names[@]}"; do
    printf '  %-6s %-18s %4ss\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}"
    [[ "${statuses[$i]}" == passed ]] || failed=1
done
logs=("${names[@]/#/$OUT/}") && logs=("${logs[@]/%/.log}")  # this run's steps only, not an earlier run's logs
[[ "$seen" == *" bench "* ]] && grep -h -E '^  (G-|C/B|test|predict|sweep)' "$OUT/bench.log"
grep -h -o -E '(FAILED|ERROR) tests/[^ ]+' "${logs[@]}" 2>/dev/null | sort -u | sed 's/^/  /'
echo "  total  $(($(date +%s) - total_start))s (budget ${budget}s)"
exit $failed
