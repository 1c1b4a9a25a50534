VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PY_SOURCES := .

.PHONY: install run test test-fast check format lint typecheck bench bench-desafio bench-slow-clients bench-uploads docs screenshot lock clean

install: $(STAMP)

# requirements*.txt are locked with hashes: pip installs exactly those files.
$(STAMP): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	./scripts/run-local.sh

# Everything, on every core: the fast tier and the slow one (gunicorn, signals, Chromium, Redis).
test: install
	$(VENV)/bin/pytest -n auto

# The inner loop: unit and in-process tests only, in seconds.
test-fast: install
	$(VENV)/bin/pytest -m "not slow" -q

format: install
	$(VENV)/bin/ruff format $(PY_SOURCES)
	$(VENV)/bin/ruff check --fix $(PY_SOURCES)

lint: install
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/ruff check $(PY_SOURCES)

typecheck: install
	$(VENV)/bin/mypy

# What CI runs before the whole suite: format, lint, types and the fast tests.
check: lint typecheck test-fast

# The generated parts of docs/: the Postman collection and api.md's curl examples and tables (from the
# OpenAPI document), and desenvolvimento.md's module map (from the modules' docstrings).
docs: install
	$(VENV)/bin/python -m scripts.export_docs

# The follow-up page's picture in the README (docs/img/acompanhar.png): the sandbox, the gateway and
# headless Chromium, all on this machine.
screenshot: install
	$(VENV)/bin/python -m scripts.screenshot_acompanhar

bench: install
	$(VENV)/bin/python -m bench.bench

# The contact form's proof of work: solve time in headless Chromium, checking cost on the server.
bench-desafio: install
	$(VENV)/bin/python -m bench.challenge

# 200 connections trickling headers, 200 idle, 40 trickling bodies for 60 s, while legitimate
# clients measure /ping and POST /criar-chamado (docs/seguranca.md, "Clientes lentos").
bench-slow-clients: install
	$(VENV)/bin/python -m bench.slow_clients

# 32 concurrent maximum-size uploads: the workers' peak RSS and the 503s beyond MULTIPART_MAX_IN_FLIGHT.
bench-uploads: install
	$(VENV)/bin/python -m bench.upload_memory

# Re-lock requirements*.txt (with hashes) from pyproject.toml after changing a dependency there.
lock: install
	$(VENV)/bin/pip-compile -q --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.txt pyproject.toml
	$(VENV)/bin/pip-compile -q --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --extra dev -o requirements-dev.txt pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
