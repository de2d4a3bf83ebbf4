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
#
# When npm is present, the Codex CLI (the coding agent of `uses: agent` / `--agent codex`) is
# installed too, at a pinned version, into the project's own folder (.tools/, git-ignored): npm
# joins pip and apt as an install route. `scripts/install.sh --codex-only` installs only it.
# CODEX_TASKS_SKIP_CODEX=1 skips it.
set -euo pipefail
# Keep in step with CODEX_PIN in codex_tasks/steps/agent_codex.py (a test checks they agree).
CODEX_VERSION=0.171.0
install_codex() {
  if ! command -v npm >/dev/null; then
    echo "install.sh: npm not found; the Codex CLI was not installed (apt-get install nodejs npm, then: scripts/install.sh --codex-only)" >&2
    return 0
  fi
  mkdir -p .tools
  npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error "@openai/codex@${CODEX_VERSION}"
  .tools/node_modules/.bin/codex --version
}
if [ "${1:-}" = "--codex-only" ]; then
  cd "$(dirname "$0")/.."
  install_codex
  exit 0
fi
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
if [ -z "${CODEX_TASKS_SKIP_CODEX:-}" ]; then
  install_codex
fi
