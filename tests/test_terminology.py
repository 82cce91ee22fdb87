"""One Chinese term per concept: the retired variants of book/zh/terminology.yml never appear in Chinese prose.

The glossaries are the source of truth (every preferred term is in both); the table beside the
Chinese glossary lists, for each concept, the variants the book no longer uses. Code cells, inline
code, math, link targets and the front matter are not prose and are not checked.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "book" / "zh"
yaml = pytest.importorskip("yaml")

PROSE_DIRECTIVES = {"admonition", "note", "tip", "warning", "important", "seealso", "hint", "caution",
                    "attention", "danger", "epigraph", "figure"}
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(?:\{([\w-]+)\})?")
INLINE = [re.compile(pattern, re.S) for pattern in (
    r"\$\$.*?\$\$",                 # display math
    r"(?<!\\)\$[^$\n]+?(?<!\\)\$",  # inline math
    r"(`+).*?\1",                   # inline code, and the argument of a role such as {cite}`key`
    r"\]\([^)\n]*\)",               # link targets
    r"<!--.*?-->",                  # comments
)]


def load_terms() -> list[dict]:
    terms = yaml.safe_load((ZH / "terminology.yml").read_text(encoding="utf-8"))
    for term in terms:
        term["retired"] = [re.compile(pattern) for pattern in term["retired"]]
        term["allow"] = [re.compile(pattern) for pattern in term.get("allow", [])]
    return terms


def blank(text: str) -> str:
    """The same text with every non-newline character replaced by a space (keeps line numbers and columns)."""
    return re.sub(r"[^\n]", " ", text)


def prose(text: str) -> str:
    """The prose of a MyST notebook: front matter, code and math blanked out, line numbers kept."""
    lines = text.split("\n")
    out, fence, in_front = [], None, bool(lines and lines[0] == "---")
    for number, line in enumerate(lines):
        if in_front:
            out.append("")
            in_front = not (number > 0 and line == "---")
            continue
        if fence:
            out.append("")
            fence = None if line.strip() == fence else fence
            continue
        match = FENCE.match(line.strip())
        if match and match.group(2) not in PROSE_DIRECTIVES:
            fence = match.group(1)
            out.append("")
            continue
        out.append("" if match or line.strip() == "$$" else line)
    result = "\n".join(out)
    result = re.sub(r"^\$\$\n.*?^\$\$$", lambda m: blank(m.group(0)), result, flags=re.S | re.M)
    for pattern in INLINE:
        result = pattern.sub(lambda m: blank(m.group(0)), result)
    return result


def without_english_column(text: str) -> str:
    """A glossary with its English column blanked: `| 中文 | English | 含义 |` rows name the English term."""
    def row(line: str) -> str:
        cells = line.split("|")
        if line.startswith("|") and len(cells) == 5:
            cells[2] = blank(cells[2])
        return "|".join(cells)
    return "\n".join(row(line) for line in text.split("\n"))


def retired_uses(text: str, terms: list[dict], glossary: bool = False) -> list[tuple[int, str, str]]:
    """(line, retired variant, preferred terms) for every retired variant in the prose of `text`."""
    body = without_english_column(prose(text)) if glossary else prose(text)
    hits = []
    for term in terms:
        allowed = [span.span() for pattern in term["allow"] for span in pattern.finditer(body)]
        for pattern in term["retired"]:
            for match in pattern.finditer(body):
                if any(start <= match.start() and match.end() <= end for start, end in allowed):
                    continue
                line = body.count("\n", 0, match.start()) + 1
                hits.append((line, match.group(0), " / ".join(term["preferred"]) + f" ({term['english']})"))
    return sorted(hits)


def glossary_terms(language: str) -> str:
    """The 中文 column of a glossary table, joined."""
    column = 1 if language == "en" else 0
    cells = [line.strip().strip("|").split("|") for line in (ROOT / "book" / language / "glossary.md")
             .read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    return "\n".join(row[column].strip() for row in cells if len(row) == 3)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_preferred_term_is_in_the_glossary(language):
    glossary = glossary_terms(language)
    for term in load_terms():
        for preferred in term["preferred"]:
            assert preferred in glossary, f"{language}/glossary.md lacks the preferred term {preferred} ({term['english']})"


def test_the_checker_finds_misuse_and_spares_code_math_and_allowed_contexts():
    terms = load_terms()
    text = ("---\nkernelspec:\n  name: python3\n---\n# 标题\n"
            "片段编号告诉模型每个词元属于哪一句，`segment 片段` 与 $\\text{层堆}$ 不算。\n"
            "```{code-cell} ipython3\n# 填充 屏蔽\n```\n"
            "注意力会把补齐位置屏蔽掉；被屏蔽的键概率为零。模型先屏蔽 15% 的词元。\n"
            "答案片段在原文里。训练 3 个 epoch，也就是 3 个轮次（epoch）。网络由许多层堆叠而成。\n")
    found = [(line, variant) for line, variant, _ in retired_uses(text, terms)]
    assert found == [(6, "片段"), (10, "屏蔽"), (11, "epoch")]


@pytest.mark.parametrize("path", sorted(ZH.glob("*.md")), ids=lambda p: p.name)
def test_chinese_prose_uses_one_term_per_concept(path):
    hits = retired_uses(path.read_text(encoding="utf-8"), load_terms(), glossary=path.name == "glossary.md")
    report = "\n".join(f"book/zh/{path.name}:{line}: {variant} -> {preferred}" for line, variant, preferred in hits)
    assert not hits, "retired Chinese terms (use the glossary's term):\n" + report
