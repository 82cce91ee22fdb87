# BERT, Annotated / 注解版 BERT
#   make test      install the test dependencies, run the unit tests and execute every chapter (en + zh)
#   make book      install the book's dependencies, export the package, execute and render _build/html
#   make export    regenerate bert_annotated/ from the English chapters
#   make notebooks write notebooks/<lang>/NN_topic.ipynb (for Colab and Binder) from the chapters
#   make book-check load every page of _build/html in headless Chromium; screenshots in _build/screenshots
#   make pretrain  pretrain a small BERT on the embedded corpus (CPU: about a minute)

PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
JOBS ?= 2
BOOK_FLAGS ?= --keep-going

.PHONY: help install install-test install-book install-check export check-export notebooks check-notebooks test book book-check pretrain clean

help:
	@sed -n 's/^#   //p' Makefile

install:
	$(PIP) install -q -e .

install-test:
	$(PIP) install -q -e ".[test]"

install-book:
	$(PIP) install -q -e ".[book]"

export:
	$(PYTHON) tools/export.py

check-export:
	$(PYTHON) tools/export.py --check

install-check:
	$(PIP) install -q -e ".[check]"

notebooks:
	$(PYTHON) tools/make_notebooks.py

check-notebooks:
	$(PYTHON) tools/make_notebooks.py --check

test: install-test
	$(PYTHON) -m pytest -n $(JOBS) --dist loadfile

# The chapters' kernels inherit PYTHONWARNINGS. tqdm warns "IProgress not found" when a chapter imports
# transformers without ipywidgets; installing ipywidgets instead would make progress bars widgets
# that load JavaScript from a CDN, which the offline book cannot do.
book: install-book export notebooks
	PYTHONWARNINGS="ignore:IProgress not found" jupyter-book build book --path-output . $(BOOK_FLAGS)

book-check: install-check
	$(PYTHON) tools/book_check.py --site _build/html --screenshots _build/screenshots

pretrain: install
	bert-annotated pretrain

clean:
	rm -rf _build book/_build .pytest_cache
