PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test faults bench clean serve

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nextbest demo

serve: $(STAMP)
	$(BIN)/nextbest serve

test: $(STAMP)
	$(BIN)/python -m pytest

# the fault suite's full version (30 s of load per phase; docs/operations.md, "Fault suite");
# its short version is tests/test_faults.py, part of `make test`
faults: $(STAMP)
	$(BIN)/python -m tests.faults --full

bench: $(STAMP)
	$(BIN)/python bench/service.py

clean:
	rm -rf $(VENV) nextbest-data .pytest_cache build *.egg-info
