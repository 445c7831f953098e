#!/usr/bin/env bash
# Wheels for the GPU check on a machine with torch, Lightning, pytest but no jsonargparse, Hydra, Optuna or
# ONNX, and no network (../shared/NOTES.md, "A GPU machine"): fetched here, with network, for that machine's
# Python into .whl/ (ignored by git), which the device tool carries there (carry [".whl"]). There:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHON=python3 PYTHONPATH=/tmp/site:$PWD GPU_CHECK_STEPS="gpu bench" scripts/gpu-check.sh
# The versions are this project's .venv's; only packages that machine lacks (a second numpy or torch there
# would shadow the ones its torch was built with). GPU_WHEELS_PYTHON picks the Python version (3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
version="${GPU_WHEELS_PYTHON:-3.12}"
rm -rf .whl && mkdir .whl  # only what this script put there: .whl/ is ignored by git
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --dest .whl \
    jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 shtab==1.13.0 \
    hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0 hydra-submitit-launcher==1.2.0 \
    submitit==1.5.4 cloudpickle==3.1.3 joblib==1.6.0 \
    hydra-optuna-sweeper==1.3.0 optuna==2.10.1 SQLAlchemy==1.4.54 greenlet==3.5.6 alembic==1.19.2 Mako==1.4.3 \
    cmaes==0.13.1 colorlog==6.12.0 \
    onnx==1.23.2 onnx-ir==1.1.0 onnxscript==0.7.2 onnxruntime==1.32.0 ml_dtypes==0.7.0
# antlr4-python3-runtime 4.9.3 (Hydra's parser) is published as a source archive only: built into a wheel here.
"$PY" -m pip wheel -q --no-deps --wheel-dir .whl antlr4-python3-runtime==4.9.3
du -sh .whl && ls .whl
