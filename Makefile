VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test bench docs clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	./scripts/run-local.sh

test: install
	$(VENV)/bin/pytest

# The generated parts of docs/: the Postman collection and api.md's curl examples and tables (from the
# OpenAPI document), and desenvolvimento.md's module map (from the modules' docstrings).
docs: install
	$(VENV)/bin/python scripts/export_docs.py

bench: install
	$(VENV)/bin/python bench/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
