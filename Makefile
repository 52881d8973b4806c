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

.PHONY: lab test test-portable venv notebooks exercises book lint clean-venv lock

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
## Outputs are stored under torch's scalar kernels and MKL's compatible code path with one
## thread (STORE_ENV); `make test` compares them under this machine's own kernels, so every
## test run checks that they hold on a second numeric set-up.
NB ?= notebooks/*.ipynb solutions/*.ipynb
STORE_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=1
notebooks: venv
	$(STORE_ENV) TQDM_DISABLE=1 PYTHONHASHSEED=0 \
	    $(BIN)/python -m coursekit.notebook_tools execute $(NB)

## Strict nbval of the lecture notebooks (or NB=...) under each numeric set-up that a user's
## machine may have: as is, MKL's compatible code path, torch's scalar kernels, 1 and 4 threads.
PORTABLE_NB ?= $(if $(filter solutions/%,$(NB)),notebooks,$(NB))
PORTABLE_SETUPS := "" "MKL_CBWR=COMPATIBLE" "ATEN_CPU_CAPABILITY=default" "OMP_NUM_THREADS=1" \
                   "OMP_NUM_THREADS=4"
test-portable: venv
	@failed=""; for setup in $(PORTABLE_SETUPS); do \
	    echo "=== strict nbval under: $${setup:-this machine's own set-up}"; \
	    env $$setup $(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) \
	        $(NBVAL) $(PORTABLE_NB) || failed="$$failed [$${setup:-as is}]"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED under:$$failed"; exit 1; fi; \
	echo "strict nbval passed under every set-up"

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
