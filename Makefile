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

test: $(STAMP)
	$(PY) -m pytest -W ignore::DeprecationWarning

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
