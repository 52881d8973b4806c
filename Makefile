# The course's two commands:  `make lab` (open the course)  and  `make test` (run every test).
# Both create .venv on first use, and recreate it when requirements.lock or pyproject.toml
# change; nothing needs installing by hand except Python >= 3.10.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8888

# Quiet, reproducible runs: no progress bars, non-interactive matplotlib outside notebooks
# (the notebooks select the inline backend themselves).
TEST_ENV := TQDM_DISABLE=1 MPLBACKEND=agg PYTHONHASHSEED=0 PYDEVD_DISABLE_FILE_VALIDATION=1

# Two test workers share the 2 cores (notebooks are mostly kernel round trips and small torch
# ops); --dist loadfile keeps every cell of a notebook on the same worker and kernel.
XDIST := -n 2 --dist loadfile

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg \
         --nbval-cell-timeout=600

.PHONY: lab test venv notebooks exercises book lint clean-venv lock

venv:
	@PYTHON=$(PYTHON) bash tools/ensure-venv.sh

## Open the course: JupyterLab on notebooks/ (Ctrl-C stops it).
lab: venv
	exec $(BIN)/jupyter lab --ServerApp.root_dir=. --port=$(PORT) \
	    --LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

## Run every test: lint, unit tests with coverage, strict nbval on the lecture notebooks,
## nbval-lax on the solutions, and the exercises-in-sync check.
test: venv
	$(BIN)/ruff check .
	$(TEST_ENV) $(BIN)/python -m pytest -q -rs $(XDIST) tests $(NBVAL) notebooks \
	    --cov=coursekit --cov-report=term --cov-config=pyproject.toml
	$(TEST_ENV) $(BIN)/python -m pytest -q $(XDIST) --nbval-lax --nbval-current-env solutions \
	    -p no:cacheprovider
	$(BIN)/python -m coursekit.exercises build --check

## Re-execute notebooks in place and store their outputs (NB=path to do just one).
NB ?= notebooks/*.ipynb solutions/*.ipynb
notebooks: venv
	TQDM_DISABLE=1 PYTHONHASHSEED=0 $(BIN)/python -m coursekit.notebook_tools execute $(NB)

## Regenerate exercises/ from solutions/.
exercises: venv
	$(BIN)/python -m coursekit.exercises build

## Build the course website from the notebooks' stored outputs (no execution) into
## build/book/html/ (open build/book/html/index.html); warnings are errors.
book: venv
	$(BIN)/python tools/build_book.py --out build/book

lint: venv
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)

## Rewrite requirements.lock from what is installed in .venv (after a deliberate upgrade).
lock:
	$(BIN)/python -m pip freeze --exclude-editable \
	    | sed -e 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' | grep -v '^coursekit' > requirements.lock
