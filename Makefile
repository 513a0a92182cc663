# Two commands for a fresh machine (see README):
#   make book   create .venv, install everything, run the notebooks (quick profile), build the HTML book
#   make test   create .venv, install everything, run the test suite
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= quick
# Pages run side by side on a local Dask cluster, one BLAS/torch thread per worker (1 = serial, as before)
WORKERS ?= 2
# Test processes (pytest-xdist, whole files per process, handed out in file-name order: the two files of
# page tests, test_book*.py, come third and fourth, so they start early and side by side; they share
# one scratch book)
TEST_WORKERS ?= 2
# The CPU build of torch. On a GPU machine: make book TORCH="torch --index-url <your CUDA wheel index>"
TORCH   ?= torch==2.13.0
# openretina (the Vi-ST chapter's outside baseline), installed without its declared dependencies (see pyproject's retina extra)
RETINA  ?= openretina==1.1.1
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.alignlib-installed

.PHONY: install book test clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@echo "[make] creating $(VENV) and installing (timed)"
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(PY) -m pip install --quiet "$(TORCH)" && \
	$(PY) -m pip install --quiet -e ".[book,test,retina]" && \
	$(PY) -m pip install --quiet --no-deps "$(RETINA)" && \
	echo "[make] install took $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

book: install
	$(PY) -m alignlib book --profile $(PROFILE) --workers $(WORKERS)

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

clean:
	rm -rf _build book/executed runs results/*/
