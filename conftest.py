"""Run every chapter of the book as a test.

The chapters are jupytext MyST Markdown files, and nbval reads only .ipynb notebooks, so each
`book/<lang>/NN_topic.md` (and `appendix_x_topic.md`) is converted in memory with jupytext and handed to nbval's collector.
nbval runs in lax mode: a cell passes when it raises nothing, and the cells hold their own
`assert`s. The kernel starts in the chapter's folder, as it would in Jupyter.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict

import pytest

CHAPTER = re.compile(r"^(\d\d|appendix_[a-z])_.+\.md$")  # numbered chapters and appendices


def _is_chapter(file_path) -> bool:
    return CHAPTER.match(file_path.name) is not None and file_path.parent.parent.name == "book"


try:
    import jupytext
    from nbval.plugin import IPyNbCell, IPyNbFile
except ImportError:  # the book's test dependencies are missing: only the unit tests run
    IPyNbFile = None


if IPyNbFile is not None:

    class MystNotebook(IPyNbFile):
        """A chapter: nbval's notebook collector fed by jupytext instead of nbformat."""

        def collect(self):
            self.nb = jupytext.read(str(self.path))
            code_cells = [cell for cell in self.nb.cells if cell.cell_type == "code"]
            for number, cell in enumerate(code_cells):
                options = defaultdict(bool, check=False)  # lax: run, don't compare outputs
                yield IPyNbCell.from_parent(self, name=f"Cell {number}", cell_num=number, cell=cell, options=options)


def pytest_configure(config):
    if IPyNbFile is not None:
        # run the kernel with this very interpreter, whatever kernelspecs are installed
        config.option.nbval_current_env = True
    # several notebooks may run at once on a small machine: keep each to one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collect_file(file_path, parent):
    if IPyNbFile is not None and file_path.suffix == ".md" and _is_chapter(file_path):
        return MystNotebook.from_parent(parent, path=file_path)
    return None
