# BERT, Annotated / 注解版 BERT
#   make test      install the test dependencies, run the unit tests and execute every chapter (en + zh)
#   make book      install the book's dependencies, export the package, execute and render _build/html
#   make export    regenerate bert_annotated/ from the English chapters
#   make pretrain  pretrain a small BERT on the embedded corpus (CPU: about a minute)

PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
JOBS ?= 2
BOOK_FLAGS ?= --keep-going

.PHONY: help install install-test install-book export check-export test book pretrain clean

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

test: install-test
	$(PYTHON) -m pytest -n $(JOBS) --dist loadfile

book: install-book export
	jupyter-book build book --path-output . $(BOOK_FLAGS)

pretrain: install
	bert-annotated pretrain

clean:
	rm -rf _build book/_build .pytest_cache
