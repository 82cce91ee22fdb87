# BERT, Annotated / 注解版 BERT
#   make test      install the test dependencies, run the unit tests and execute every chapter (en + zh)
#   make book      install the book's dependencies, export the package and the notebooks, then build the book
#                  with exactly `jupyter-book build book` (executes every chapter; HTML in _build/html)
#   make export    regenerate bert_annotated/ from the English chapters
#   make notebooks write notebooks/<lang>/NN_topic.ipynb (for Jupyter, Colab and Binder) from the chapters
#   make book-check load every page of _build/html in headless Chromium; screenshots in _build/screenshots;
#                  then run chapter 09's live model in the page and compare it with PyTorch (_build/live-check.json)
#   make pretrain  pretrain a small BERT on the embedded corpus (CPU: about a minute)
#   make install-notebook  install JupyterLab + jupytext: open book/en/NN_topic.md as a notebook

PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
JOBS ?= 2
BOOK_FLAGS ?=

# PyTorch threads that do not oversubscribe the machine: OMP_NUM_THREADS if set, else the CPUs this
# process may use and other work leaves free (bert_annotated.runtime.cpu_thread_count(): affinity, cgroup
# quota, 1-minute load average;
# run from the source file so that it works before the package is installed). `make test` runs $(JOBS)
# pytest workers, so each gets its share. The book's extension picks the same default for a plain
# `jupyter-book build book`.
THREADS := $(shell $(PYTHON) -c "import runpy; print(runpy.run_path('bert_annotated/runtime.py')['cpu_thread_count']())" 2>/dev/null || echo 1)
TEST_THREADS := $(shell echo $$(( $(THREADS) / $(JOBS) > 0 ? $(THREADS) / $(JOBS) : 1 )))
export OMP_NUM_THREADS := $(THREADS)

.PHONY: help install install-test install-book install-check install-notebook export check-export notebooks check-notebooks test book book-check pretrain clean

help:
	@sed -n 's/^#   //p' Makefile

# Each install target installs only when something is missing (tools/ensure_installed.py): a second
# `make test` or `make book` reinstalls nothing, prints nothing and works offline.
install:
	$(PYTHON) tools/ensure_installed.py

install-test:
	$(PYTHON) tools/ensure_installed.py test

install-book:
	$(PYTHON) tools/ensure_installed.py book

install-check:
	$(PYTHON) tools/ensure_installed.py check

install-notebook:
	$(PYTHON) tools/ensure_installed.py notebook

export:
	$(PYTHON) tools/export.py

check-export:
	$(PYTHON) tools/export.py --check

notebooks:
	$(PYTHON) tools/make_notebooks.py

check-notebooks:
	$(PYTHON) tools/make_notebooks.py --check

test: install-test
	OMP_NUM_THREADS=$(TEST_THREADS) $(PYTHON) -m pytest -n $(JOBS) --dist loadfile

# The build command is the one the README gives, unchanged (tests/test_book.py checks it): whatever
# the book needs at build time lives in _config.yml and book/_ext, not here. CI adds -W --keep-going.
book: install-book export notebooks
	jupyter-book build book $(BOOK_FLAGS)

book-check: install-check
	$(PYTHON) tools/book_check.py --site _build/html --screenshots _build/screenshots
	$(PYTHON) tools/live_check.py --site _build/html --output _build/live-check.json

pretrain: install
	bert-annotated pretrain

clean:
	rm -rf _build .pytest_cache
