# codex-tasks: `make run` and `make test` are all a new user needs.
# Every install goes through constraints.txt, which pins torch to the CPU wheel (see docs/install.md).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.install-stamp
PIP    := $(PY) -m pip install -q -c constraints.txt
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint docs image clean

CODEX_BIN := .tools/node_modules/.bin/codex

install: $(STAMP) $(CODEX_BIN)

# The Codex CLI (pinned in scripts/install.sh) from the npm registry, into .tools/ (git-ignored).
# Without npm the script says how to get it and the target stays missing (agent tests then fail
# under CI=1, skip otherwise).
$(CODEX_BIN): scripts/install.sh
	scripts/install.sh --codex-only

# scripts/install.sh is the one install recipe (the Dockerfile runs it too).
$(STAMP): pyproject.toml constraints.txt scripts/install.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	scripts/install.sh $(PY) -e '.[dev]'
	@# byte-compile now: with PYTHONDONTWRITEBYTECODE set, every start would compile the package again
	$(PY) -m compileall -q codex_tasks
	@touch $(STAMP)

run: install
	$(VENV)/bin/codex-tasks run codex_ready_task_sequence.yaml

# The whole suite, slow-marked tests included (what CI runs).
test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The inner loop: everything but slow-marked tests, on both cores (~2.5 minutes here).
test-fast: install
	$(PY) -m pytest -q -m "not slow" -n 2 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check codex_tasks tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports       # the layer rule (pyproject.toml [tool.importlinter])
	$(VENV)/bin/hadolint Dockerfile

docs: install
	$(PY) -m codex_tasks.reference.docs
	$(VENV)/bin/mkdocs build --strict

# CPU image (Docker is not available on the development machines: docs/docker.md).
image:
	docker build -t codex-tasks .

clean:
	rm -rf $(VENV) build dist site *.egg-info .codex
