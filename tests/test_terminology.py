"""One Chinese term per concept: the retired variants of book/zh/terminology.yml never appear in Chinese prose.

The glossaries are the source of truth (every preferred term is in both); the table beside the
Chinese glossary lists, for each concept, the variants the book no longer uses, the English name a
chapter may give once in parentheses (and, for some terms, must give on first use), and the one other
translation (又译……) a chapter may mention once. Code cells, inline code, math, link targets and the
front matter are not prose and are not checked; the Chinese text that a code cell shows a reader is checked
like prose: the second argument of every `tr("…", "中文")` (figure labels, printed headers and captions) and the
alt text of a diagram (`:mystnb: {image: {alt: "…"}}`).
"""
from __future__ import annotations

import ast
import itertools
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
        preferred = "|".join(map(re.escape, term["preferred"]))
        term["uses"] = re.compile(term.get("uses", f"(?:{preferred})"))
        if "gloss" in term:  # 层归一化（LayerNorm）, **层归一化**（LayerNorm，…）: the gloss group is the English
            term["glossed"] = re.compile(f"(?:{preferred})(?:\\*\\*)?（(?P<gloss>{re.escape(term['gloss'])})(?=[）,，、；])")
        term["alias"] = [re.compile("又译" + re.escape(alias)) for alias in term.get("alias", [])]
        term["pending"] = set(term.get("pending", []))
    return terms


def blank(text: str) -> str:
    """The same text with every non-newline character replaced by a space (keeps line numbers and columns)."""
    return re.sub(r"[^\n]", " ", text)


def prose(text: str) -> str:
    """The prose of a MyST notebook: front matter, code and math blanked out, line numbers kept."""
    lines = text.split("\n")
    out, fence, in_front, in_math = [], None, bool(lines and lines[0] == "---"), False
    for number, line in enumerate(lines):
        if in_front:
            out.append("")
            in_front = not (number > 0 and line == "---")
            continue
        if not fence and line.strip() == "$$":  # a display-math block: $$ on lines of their own
            in_math = not in_math
            out.append("")
            continue
        if in_math:
            out.append("")
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
        out.append("" if match else line)
    result = "\n".join(out)
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


IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?")


def without_identifiers(text: str) -> str:
    """Labels with their code names blanked: a label has no backticks, so `attention_mask` or `model.bert` is
    written bare, and a name with an underscore or a dot in it is code, which the prose check skips too."""
    return IDENTIFIER.sub(lambda m: blank(m.group(0)) if "_" in m.group(0) or "." in m.group(0) else m.group(0), text)


def first_match_spans(patterns, body: str) -> list[tuple[int, int]]:
    """The span of the first match of each pattern: what a chapter may say once."""
    return [match.span() for pattern in patterns for match in [pattern.search(body)] if match]


def retired_uses(text: str, terms: list[dict], glossary: bool = False, name: str = "", labels: bool = False,
                 body: str | None = None) -> list[tuple[int, str, str]]:
    """(line, retired variant, preferred terms) for every retired variant in the prose of `text`.

    The first 又译<alias> of a chapter and its first gloss, 中文（English）, are allowed; on a chapter (not the
    glossary, not a label), a `first_use` term whose first use lacks its gloss is reported too. `labels`
    checks `body` (figure labels) instead of the prose; `name` selects the `pending` exemptions."""
    if body is None:
        body = without_english_column(prose(text)) if glossary else prose(text)
    elif labels:
        body = without_identifiers(body)
    pending_key = f"{name}#labels" if labels else name
    aliases = first_match_spans([alias for term in terms for alias in term["alias"]], body)
    hits = []
    for term in terms:
        if pending_key in term["pending"]:
            continue
        allowed = [span.span() for pattern in term["allow"] for span in pattern.finditer(body)] + aliases
        wanted = f"{' / '.join(term['preferred'])} ({term['english']})"
        if "glossed" in term:
            glosses = list(term["glossed"].finditer(body))
            checks_first_use = term.get("first_use") and not (glossary or labels)
            allowed += [glosses[0].span("gloss")] if glosses and not checks_first_use else []
            if checks_first_use:
                first = term["uses"].search(body)
                if first and not (glosses and glosses[0].start() == first.start()):
                    hits.append((body.count("\n", 0, first.start()) + 1, f"{first.group(0)} (first use)",
                                 f"{first.group(0)}（{term['gloss']}）"))
                elif first:
                    allowed.append(glosses[0].span("gloss"))
        for pattern in term["retired"]:
            for match in pattern.finditer(body):
                if any(start <= match.start() and match.end() <= end for start, end in allowed):
                    continue
                line = body.count("\n", 0, match.start()) + 1
                hits.append((line, match.group(0), wanted))
    return sorted(hits)


CELL_OPTION = re.compile(r":([\w-]+):\s*(.*)")  # a MyST cell option, `:tags: [hide-input]`, at the top of a cell


def figure_labels(text: str) -> str:
    """The Chinese text of every `tr("English", "中文")` in the code cells, and of every diagram's alt text, one
    label per line.

    A `tr` call is found with `ast` wherever it is: a figure label, a printed header, a table caption. An f-string
    label keeps its literal parts; a label that is not a string (a dictionary lookup, say) has its string constants
    checked instead. The alt text comes from the cell option `:mystnb: {image: {alt: "…"}}`."""
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    labels = []
    for cell in cells:
        lines = cell.split("\n")
        options = [CELL_OPTION.fullmatch(line) for line in itertools.takewhile(CELL_OPTION.fullmatch, lines)]
        for option in options:
            metadata = yaml.safe_load(option.group(2)) if option.group(1) == "mystnb" else None
            alt = ((metadata or {}).get("image") or {}).get("alt")
            if isinstance(alt, str):
                labels.append(alt.replace("\n", " "))
        code = "\n".join([""] * len(options) + lines[len(options):])  # option lines blanked: line numbers kept
        source = re.sub(r"^(\s*)[%!].*$", r"\1pass", code, flags=re.M)
        calls = [node for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tr" and len(node.args) >= 2]
        for node in sorted(calls, key=lambda call: (call.lineno, call.col_offset)):
            strings = [part.value for part in ast.walk(node.args[1])
                       if isinstance(part, ast.Constant) and isinstance(part.value, str)]
            labels.append(" ".join(strings).replace("\n", " "))
    return "\n".join(labels)


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
            "```{code-cell} ipython3\n# 补齐 屏蔽\n```\n"
            "注意力会把填充位置屏蔽掉；被屏蔽的键概率为零。模型先屏蔽 15% 的词元。\n"
            "答案片段在原文里。训练 3 个 epoch，也就是 3 个轮次（epoch）。网络由许多层堆叠而成。\n")
    found = [(line, variant) for line, variant, _ in retired_uses(text, terms)]
    assert found == [(6, "片段"), (10, "屏蔽"), (11, "epoch")]


def test_the_checker_wants_the_english_once_on_first_use_and_allows_one_declared_alias():
    terms = load_terms()
    good = ("# 标题\n相加之后做层归一化（LayerNorm，eps 为 1e-12），再做随机失活（dropout，又译暂退法）。\n"
            "句段嵌入（segment embedding，又译片段嵌入）。层归一化和随机失活都在训练中起作用。\n"
            "$$\n\\mathrm{LayerNorm}(x + \\mathrm{Dropout}(y))\n$$\n")
    assert retired_uses(good, terms) == []
    bad = ("# 标题\n先做层归一化，再做层归一化（LayerNorm）。LayerNorm 之后是 dropout。\n"
           "随机失活（dropout）之后，又译暂退法，又译暂退法。post-LN 与前置 LN。\n")
    found = [(line, variant) for line, variant, _ in retired_uses(bad, terms)]
    assert found == [(2, "LayerNorm"), (2, "LayerNorm"), (2, "dropout"), (2, "层归一化 (first use)"),
                     (3, "LN"), (3, "post-LN"), (3, "暂退法")]
    assert retired_uses("# 标题\n层归一化（LayerNorm）\n", terms, glossary=True) == []


def test_labels_are_read_from_tr_calls_and_alt_text_and_checked_without_the_first_use_rule():
    text = ("正文。\n```{code-cell} ipython3\n:tags: [hide-input]\n"
            "axis.set_xlabel(tr('dev accuracy', 'dev 准确率'))\nprint('dev')\n"
            "axis.set_title(tr(f'{n} steps', f'{n} 步，补齐后'))\nlabel = tr('LayerNorm', '层归一化（LayerNorm）')\n```\n"
            "```{code-cell} ipython3\n:tags: [hide-input]\n:mystnb: {image: {alt: \"被遮盖的词元\"}}\n"
            "print(f'{n:5d}', tr('{} tokens: {}', '{} 个 token：{}').format(n, tr('none', '无')))\n"
            "print(tr('attention_mask, state_dict()', 'attention_mask 与 model.state_dict()'))\n```\n")
    labels = figure_labels(text)
    assert labels.split("\n") == ["dev 准确率", " 步，补齐后", "层归一化（LayerNorm）", "被遮盖的词元", "{} 个 token：{}", "无",
                                   "attention_mask 与 model.state_dict()"]  # code names are not checked
    found = [(line, variant) for line, variant, _ in retired_uses(text, load_terms(), labels=True, body=labels)]
    assert found == [(1, "dev"), (2, "补齐"), (4, "遮盖"), (5, "token")]


def chinese_pages():
    return sorted(ZH.glob("*.md"))


@pytest.mark.parametrize("path", chinese_pages(), ids=lambda p: p.name)
def test_chinese_prose_uses_one_term_per_concept(path):
    hits = retired_uses(path.read_text(encoding="utf-8"), load_terms(), glossary=path.name == "glossary.md",
                        name=path.name)
    report = "\n".join(f"book/zh/{path.name}:{line}: {variant} -> {preferred}" for line, variant, preferred in hits)
    assert not hits, "retired Chinese terms (use the glossary's term):\n" + report


@pytest.mark.parametrize("path", chinese_pages(), ids=lambda p: p.name)
def test_chinese_figure_labels_use_one_term_per_concept(path):
    text = path.read_text(encoding="utf-8")
    labels = figure_labels(text).split("\n")
    hits = retired_uses(text, load_terms(), name=path.name, labels=True, body="\n".join(labels))
    report = "\n".join(f"book/zh/{path.name}: label {labels[line - 1]!r}: {variant} -> {preferred}"
                        for line, variant, preferred in hits)
    assert not hits, "retired Chinese terms in figure labels (change the tr(...) call in both editions):\n" + report


def test_pending_exemptions_are_still_needed():
    """A `pending` file that no longer uses the retired variant must lose its exemption."""
    terms = load_terms()
    for term in terms:
        for key in term["pending"]:
            name, _, part = key.partition("#")
            text = (ZH / name).read_text(encoding="utf-8")
            alone = [dict(term, pending=set())]
            if part == "labels":
                hits = retired_uses(text, alone, labels=True, body=figure_labels(text))
            else:
                hits = retired_uses(text, alone, glossary=name == "glossary.md")
            assert hits, f"{term['english']}: {key} is clean now; remove it from `pending` in terminology.yml"
