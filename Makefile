# Two entry points (see README): `make demo` and `make test`.  Both create .venv and install the project into it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PY) -m solvers.exact.cg_warm  # numba compiles the pricing kernels once, here, not inside a bound's time limit
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stsched demo

# the suite on 2 worker processes (pytest-xdist), one test file per worker at a time: module fixtures (a solved
# plan, a CPU profile sweep, Ray's local instance) are made once; `make test PYTEST_WORKERS=0` runs it in one process
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -W ignore::DeprecationWarning $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
