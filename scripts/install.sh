#!/usr/bin/env bash
# The one install recipe. `make install` (and so CI, which calls make) and the Dockerfile both run it,
# so the image is built exactly the way CI proves.
#
#   scripts/install.sh PYTHON PIP_ARGS...
#   scripts/install.sh .venv/bin/python -e '.[dev]'      # make install
#   scripts/install.sh /opt/venv/bin/python .            # Dockerfile
#
# Every install goes through constraints.txt, which pins torch. torch is installed first, on its
# own, so nothing ever pulls a multi-GB CUDA build as a dependency of something else. Set
# TORCH_INDEX_URL to take it from a wheel index, e.g. PyTorch's CPU-only index
# https://download.pytorch.org/whl/cpu (the Dockerfile does; these machines install it from the
# local wheel mirror instead). GPU users: docs/install.md.
set -euo pipefail
py=${1:?usage: scripts/install.sh PYTHON PIP_ARGS...}
shift
cd "$(dirname "$0")/.."
pip=("$py" -m pip install --quiet --constraint constraints.txt)
"${pip[@]}" --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" --index-url "$TORCH_INDEX_URL" torch
else
  "${pip[@]}" torch
fi
"${pip[@]}" "$@"
