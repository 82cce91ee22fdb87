"""Write runnable Jupyter notebooks, notebooks/<lang>/NN_topic.ipynb, from the book's chapters.

The chapters are jupytext MyST Markdown files (book/en/NN_topic.md, book/zh/NN_topic.md). Colab and
Binder open classic .ipynb files, so `make notebooks` converts every chapter with jupytext and
commits the result; the book's Colab/Binder buttons point at these files.

Each notebook starts with one extra code cell that installs the package when, and only when, it
runs on Colab (`"google.colab" in sys.modules`): `pip install git+<repository url>@<branch>`, with
the URL and branch read from `repository:` in _config.yml. Elsewhere the cell does nothing
(locally, `pip install -e .` or `make install` has already installed the package).

The output is deterministic (no outputs, fixed cell ids, sorted keys), so `--check` can tell
whether the committed notebooks are in sync with the chapters.

Usage:  python tools/make_notebooks.py [--book book] [--out notebooks] [--config _config.yml] [--check]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

CHAPTER = re.compile(r"^\d\d_.+\.md$")
LANGUAGES = ("en", "zh")
INSTALL_CELL = '''\
# On Google Colab, install this book's package first; anywhere else this cell does nothing.
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{requirement}"], check=True)'''
INSTALL_NOTE = {
    "en": "*This notebook is generated from `{source}` by `make notebooks`; edit the chapter, not this file.*",
    "zh": "*本笔记本由 `make notebooks` 从 `{source}` 生成；请修改章节源文件，而不是这个文件。*",
}


class NotebookError(ValueError):
    """A problem with the inputs, reported in one line."""


def repository(config_path: Path) -> tuple[str, str]:
    """(url, branch) from the `repository:` section of _config.yml."""
    import yaml

    if not config_path.exists():
        raise NotebookError(f"{config_path}: not found; run from the repository root or pass --config")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    section = config.get("repository") or {}
    url = str(section.get("url", "")).rstrip("/")
    if not url.startswith("https://"):
        raise NotebookError(f"{config_path}: repository.url must be an https:// URL, got {url!r}")
    return url, str(section.get("branch", "main"))


def chapters(book: Path) -> list[Path]:
    return [path for language in LANGUAGES for path in sorted((book / language).glob("*.md")) if CHAPTER.match(path.name)]


def notebook_json(chapter: Path, relative_source: str, url: str, branch: str) -> str:
    """The .ipynb text of one chapter: a note, the Colab install cell, then the chapter's cells."""
    import jupytext
    import nbformat

    notebook = jupytext.read(chapter)
    language = chapter.parent.name
    note = nbformat.v4.new_markdown_cell(INSTALL_NOTE[language].format(source=relative_source))
    install = nbformat.v4.new_code_cell(INSTALL_CELL.format(requirement=f"git+{url}.git@{branch}"))
    notebook.cells = [note, install, *notebook.cells]
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:03d}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build(book: Path, out: Path, config: Path, root: Path) -> dict[Path, str]:
    """Every notebook to write, by path relative to `out`, with its text."""
    url, branch = repository(config)
    found = chapters(book)
    if not found:
        raise NotebookError(f"{book}: no chapters (book/<lang>/NN_topic.md) found")
    outputs: dict[Path, str] = {}
    for chapter in found:
        relative = chapter.resolve().relative_to(root).as_posix() if chapter.resolve().is_relative_to(root) else chapter.name
        outputs[Path(chapter.parent.name) / chapter.with_suffix(".ipynb").name] = notebook_json(chapter, relative, url, branch)
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", default="book", help="folder holding en/ and zh/ (default: book)")
    parser.add_argument("--out", default="notebooks", help="folder to write (default: notebooks)")
    parser.add_argument("--config", default="_config.yml", help="Jupyter Book config naming the repository")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the notebooks are out of date")
    args = parser.parse_args(argv)
    root = Path.cwd().resolve()
    out = Path(args.out)
    try:
        outputs = build(Path(args.book), out, Path(args.config), root)
    except NotebookError as error:
        print(f"make_notebooks: {error}", file=sys.stderr)
        return 2
    existing = {path.relative_to(out) for path in out.glob("*/*.ipynb")} if out.exists() else set()
    stale = sorted(existing - set(outputs))
    changed = sorted(name for name, text in outputs.items()
                     if not (out / name).exists() or (out / name).read_text(encoding="utf-8") != text)
    if args.check:
        for name in changed:
            print(f"out of date: {(out / name).as_posix()}")
        for name in stale:
            print(f"stale: {(out / name).as_posix()}")
        if changed or stale:
            print("run `make notebooks` to regenerate them")
        return 1 if changed or stale else 0
    for name in changed:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(outputs[name], encoding="utf-8")
        temporary.replace(target)
    for name in stale:
        (out / name).unlink()
    print(f"wrote {len(outputs)} notebooks into {out.as_posix()}/ ({len(changed)} changed, {len(stale)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
