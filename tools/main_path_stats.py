"""How heavy each chapter is for a reader: code : prose (characters) and the longest code cell.

Code characters are those inside code cells (without the MyST option line); prose characters are
everything else in the file. The longest cell counts non-blank lines. The main path aims at
code : prose <= 1.5 and no cell over 50 lines (CONTRIBUTING.md); appendices may be code-heavy.

Usage:  python tools/main_path_stats.py [--json FILE] [--check]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"
CELL = re.compile(r"(```\{code-cell\}[^\n]*\n.*?\n```)", re.S)
MAX_RATIO, MAX_CELL_LINES = 1.5, 50


def chapter_stats(path: Path) -> dict:
    code = prose = longest = cells = 0
    for part in CELL.split(path.read_text(encoding="utf-8")):
        if part.startswith("```{code-cell}"):
            lines = [line for line in part.split("\n")[1:-1] if not line.startswith(":")]
            code += len("\n".join(lines))
            longest = max(longest, sum(1 for line in lines if line.strip()))
            cells += 1
        else:
            prose += len(part)
    return {"code_chars": code, "prose_chars": prose, "code_to_prose": round(code / max(prose, 1), 2),
            "longest_cell": longest, "code_cells": cells}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the table to this JSON file")
    parser.add_argument("--check", action="store_true", help="exit 1 if an English main-path chapter is over the aims")
    args = parser.parse_args(argv)
    table, over = {}, []
    for language in ("en", "zh"):
        for path in sorted((BOOK / language).glob("[0-9][0-9]_*.md")) + sorted((BOOK / language).glob("appendix_*.md")):
            stats = table.setdefault(language, {})[path.stem] = chapter_stats(path)
            main_path = path.stem[:2].isdigit()
            flag = main_path and (stats["code_to_prose"] > MAX_RATIO or stats["longest_cell"] > MAX_CELL_LINES)
            if flag and language == "en":
                over.append(path.stem)
            print(f"{language} {path.stem:32s} code:prose {stats['code_to_prose']:5.2f}  longest cell "
                  f"{stats['longest_cell']:4d}  cells {stats['code_cells']:3d}{'  <- over the aim' if flag else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
