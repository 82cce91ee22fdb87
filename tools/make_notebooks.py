"""Write runnable Jupyter notebooks, notebooks/<lang>/NN_topic.ipynb, from the book's chapters.

The chapters are jupytext MyST Markdown files (book/en/NN_topic.md, book/zh/NN_topic.md). Jupyter,
Colab and Binder open classic .ipynb files and render their Markdown as plain CommonMark, where
MyST's roles and directives would show up as source text. So `make notebooks` converts each
chapter with jupytext and then rewrites what only MyST understands:

* citations ``{cite}`key` `` become author-year text linking to the work ("Devlin et al., 2019"),
  with a reference list built from book/references.bib at the end of the notebook;
* admonitions and other boxes (``:::{admonition} Title``, ``{note}``, ``{tip}``...) become blockquotes
  with a bold title; ``{math}`` becomes ``$$``, ``{code-block}`` a fenced block, ``{figure}`` an image,
  ``{glossary}`` a list of bold terms; directives with nothing to show (``{bibliography}``, ``{toctree}``)
  are dropped;
* roles become their text: ``{ref}``/``{numref}`` the title of the target, ``{doc}`` a link to the
  chapter's notebook, ``{term}``/``{index}``/``{abbr}`` the word, ``{math}`` inline ``$...$``;
* ``(label)=`` targets, ``%`` comments and equation labels after ``$$`` are removed;
* the export markers of the code cells go: a cell holding only ``#| default_exp`` is dropped, and the
  ``#| export`` lines are removed from the cells they mark (the code stays; it is the package's).

`myst_leftovers()` lists any MyST syntax still present; a notebook with leftovers is an error, so an
unknown construct fails `make notebooks` instead of reaching readers.

Each notebook starts with one extra code cell that sets the edition's language for figure labels
(``BERT_BOOK_LANG``, read by ``bert_annotated.runtime.tr``) and installs the package when, and only
when, it runs on Colab (`"google.colab" in sys.modules`): `pip install git+<repository url>@<branch>`,
with the URL and branch read from `repository:` in _config.yml. Elsewhere it installs nothing
(locally, `pip install -e .` has already installed the package).

The output is deterministic (no outputs, fixed cell ids, sorted keys), so `--check` can tell
whether the committed notebooks are in sync with the chapters.

Usage:  python tools/make_notebooks.py [--book book] [--out notebooks] [--config _config.yml] [--check]
"""
from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHAPTER = re.compile(r"^(?:\d\d|appendix_[a-z])_.+\.md$")
LANGUAGES = ("en", "zh")
INSTALL_CELL = '''\
# {note}
# {purpose}
import os
import subprocess
import sys

os.environ["BERT_BOOK_LANG"] = "{language}"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{requirement}"], check=True)'''
INSTALL_NOTE = {
    "en": "Generated from {source} by `make notebooks`: edit the chapter, not this file.",
    "zh": "本笔记本由 `make notebooks` 从 {source} 生成：请修改章节源文件，而不是这个文件。",
}
INSTALL_PURPOSE = {
    "en": "Figure labels in this edition's language; on Google Colab, install this book's package first.",
    "zh": "图中的标签使用中文；在 Google Colab 上运行时，先安装本书的代码包。",
}
WORDS = {
    "en": {"et al.": "et al.", "and": "and", "references": "References", "note": "Note", "tip": "Tip",
           "hint": "Hint", "important": "Important", "warning": "Warning", "caution": "Caution",
           "attention": "Attention", "danger": "Danger", "error": "Error", "seealso": "See also",
           "figure": "Figure", "equation": "equation"},
    "zh": {"et al.": "等", "and": "和", "references": "参考文献", "note": "注意", "tip": "提示",
           "hint": "提示", "important": "重要", "warning": "警告", "caution": "小心",
           "attention": "注意", "danger": "危险", "error": "错误", "seealso": "另见",
           "figure": "图", "equation": "公式"},
}
EXPORT_MARKER = re.compile(r"^#\|\s*(?:default_exp|export|exporti|exports|hide)\b.*$")


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


# ------------------------------------------------------------------ bibliography
@dataclass
class Work:
    """One entry of book/references.bib, as a notebook shows it."""
    key: str
    authors: list[str]      # full names, "Jacob Devlin"
    last_names: list[str]   # "Devlin"
    others: bool            # the author list ends with "and others"
    year: str
    title: str
    venue: str
    link: str | None


LATEX_MARKUP = [
    (re.compile(r"\\texttt\s*\{([^{}]*)\}"), lambda m: "`" + m.group(1).replace("\\_", "_") + "`"),
    (re.compile(r"\\(?:emph|textit)\s*\{([^{}]*)\}"), lambda m: f"*{m.group(1)}*"),
    (re.compile(r"\\textbf\s*\{([^{}]*)\}"), lambda m: f"**{m.group(1)}**"),
]


def _latex_text(value: str) -> str:
    """A BibTeX field as Markdown: \\texttt/\\emph/\\textbf as code/italics/bold, accents and braces resolved."""
    from pybtex.richtext import Text

    if not value:
        return ""
    for pattern, markdown in LATEX_MARKUP:
        value = pattern.sub(markdown, value)
    return str(Text.from_latex(value)).strip()


def _work_link(fields) -> str | None:
    """The work's URL: url, else its DOI, else an arXiv number or a GitHub repository named in the entry."""
    if fields.get("url"):
        return fields["url"]
    if fields.get("doi"):
        return "https://doi.org/" + fields["doi"]
    text = " ".join(fields.get(name, "") for name in ("eprint", "number", "note", "howpublished"))
    arxiv = re.search(r"arXiv:\s*(\d{4}\.\d{4,5})", text)
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv.group(1)}"
    github = re.search(r"GitHub repository\s+([\w.-]+/[\w.-]+)", text)
    return f"https://github.com/{github.group(1)}" if github else None


def read_bibliography(path: Path) -> dict[str, Work]:
    """Every entry of a BibTeX file by key; an empty dict when the file does not exist."""
    if not path.exists():
        return {}
    from pybtex.database import parse_file

    works = {}
    for key, entry in parse_file(str(path), "bibtex").entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        named = [person for person in people if str(person) != "others"]
        fields = entry.fields
        venue = (fields.get("journal") or fields.get("booktitle") or fields.get("howpublished")
                 or " ".join(filter(None, (fields.get("institution"), fields.get("number")))))
        works[key] = Work(
            key=key,
            authors=[_latex_text(" ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names)) for p in named],
            last_names=[_latex_text(" ".join(p.prelast_names + p.last_names)) for p in named],
            others=len(named) < len(people), year=fields.get("year", ""),
            title=_latex_text(fields.get("title", "")), venue=_latex_text(venue), link=_work_link(fields),
        )
    return works


def author_names(work: Work, language: str) -> str:
    """'Devlin et al.' / 'Devlin 等', 'Schuster and Nakajima' / 'Schuster 和 Nakajima', 'Kim'."""
    words = WORDS[language]
    names = work.last_names or [work.title]
    if len(names) >= 3 or (work.others and len(names) >= 1):
        return f"{names[0]} {words['et al.']}"
    if len(names) == 2:
        return f"{names[0]} {words['and']} {names[1]}"
    return names[0]


def reference_entry(work: Work) -> str:
    """One line of the notebook's reference list."""
    if work.others or len(work.authors) < 2:
        authors = ", ".join(work.authors) + (" et al." if work.others else "")
    else:
        authors = ", ".join(work.authors[:-1]) + " and " + work.authors[-1]
    title = f"[*{work.title}*]({work.link})" if work.link else f"*{work.title}*"
    venue = f" {work.venue}." if work.venue else ""
    return f"- {authors} ({work.year}). {title}.{venue}"


# ------------------------------------------------------------------ MyST Markdown -> plain Jupyter Markdown
@dataclass
class Context:
    """What the conversion of one chapter needs, and the works it cited (in order of first citation)."""
    language: str
    works: dict[str, Work]
    labels: dict[str, str] = field(default_factory=dict)       # (label)= / :name: -> title or caption
    titles: dict[tuple[str, str], str] = field(default_factory=dict)  # (language, page) -> its "# " title
    substitutions: dict[str, str] = field(default_factory=dict)
    raw_url: str = ""                                          # https://raw.githubusercontent.com/<repo>/<branch>
    cited: list[str] = field(default_factory=list)


FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})[ \t]*(?P<info>.*?)[ \t]*$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.+-]+)\}[ \t]*(?P<argument>.*)$")
INLINE = re.compile(r"(?:\{(?P<role>[A-Za-z][\w:+.-]*)\})?(?P<ticks>`+)(?P<body>.+?)(?<!`)(?P=ticks)(?!`)", re.S)
TARGET = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$")
EQUATION_LABEL = re.compile(r"^(?P<math>[ \t]*\$\$)[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$")
AMS_ENVIRONMENT = re.compile(r"^[ \t]*\\begin\{(?P<name>(?:equation|multline|gather|align|alignat|flalign|eqnarray)\*?)\}")
LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^()\s]+)\)")
SUBSTITUTION = re.compile(r"\{\{\s*(?P<name>[\w.-]+)\s*\}\}")
ROLE_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
BOXES = {"admonition", "note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
         "seealso", "dropdown", "margin", "sidebar", "topic", "epigraph", "pull-quote", "highlights"}
DROPPED_DIRECTIVES = {"bibliography", "toctree", "tableofcontents", "contents", "index", "eval-rst", "code-cell"}
CODE_ROLES = {"code", "literal", "file", "samp", "kbd", "command", "program", "envvar", "option", "mimetype"}


def closing_fence(lines: list[str], start: int, fence: str) -> int:
    """Index of the line closing `fence` opened just before `start` (len(lines) if it never closes)."""
    inner = None  # a code fence opened inside a ::: directive
    for index in range(start, len(lines)):
        match = FENCE.match(lines[index])
        if not match:
            continue
        candidate, info = match["fence"], match["info"]
        if inner is not None:
            if candidate[0] == inner[0] and len(candidate) >= len(inner) and not info:
                inner = None
        elif candidate[0] == fence[0] and len(candidate) >= len(fence) and not info:
            return index
        elif fence[0] == ":" and candidate[0] in "`~":
            inner = candidate
    return len(lines)


def split_options(body: str) -> tuple[dict, str]:
    """A directive's `:key: value` lines or `---` YAML block, and the rest of its body."""
    lines = body.split("\n")
    options: dict = {}
    if lines and lines[0].strip() == "---" and "---" in [line.strip() for line in lines[1:]]:
        import yaml

        end = 1 + [line.strip() for line in lines[1:]].index("---")
        options = yaml.safe_load("\n".join(lines[1:end])) or {}
        lines = lines[end + 1:]
    else:
        while lines and re.match(r"^:[\w-]+:", lines[0].strip()):
            name, _, value = lines.pop(0).strip()[1:].partition(":")
            options[name] = value.strip()
    return options, "\n".join(lines).strip("\n")


def convert_markdown(text: str, context: Context) -> str:
    """A markdown cell of a MyST chapter as CommonMark that Jupyter and Colab display as the book does."""
    lines, output, prose = text.split("\n"), [], []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        directive = DIRECTIVE.match(match["info"]) if match else None
        if not match or (match["fence"][0] == ":" and not directive):
            prose.append(lines[index])
            index += 1
            continue
        end = closing_fence(lines, index + 1, match["fence"])
        output.append(convert_prose("\n".join(prose), context))
        prose = []
        if directive:
            indent = match["indent"]
            body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines[index + 1:end])
            rendered = render_directive(directive["name"], directive["argument"], body, context)
            output.append("\n".join(indent + line if line else line for line in rendered.split("\n")))
        else:
            output.append("\n".join(lines[index:end + 1]))  # a code block: verbatim
        index = end + 1
    output.append(convert_prose("\n".join(prose), context))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(output)).strip("\n")


def blockquote(title: str, inner: str) -> str:
    lines = ([f"**{title}**", ""] if title else []) + inner.split("\n")
    return "\n".join(">" + (" " + line if line else "") for line in lines)


def render_directive(name: str, argument: str, body: str, context: Context) -> str:
    """One MyST directive as plain Markdown (see the module docstring for the mapping)."""
    name = name.lower()
    options, body = split_options(body)
    words = WORDS[context.language]
    if name in BOXES or name.startswith("admonition"):
        title = convert_prose(argument, context) if argument else words.get(name, "")
        return blockquote(title, convert_markdown(body, context))
    if name == "math":
        return "$$\n" + body.strip() + "\n$$"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{argument.split()[0] if argument else ''}\n{body}\n```"
    if name in ("figure", "image"):
        caption = convert_markdown(body, context) if name == "figure" else ""
        alt = str(options.get("alt") or caption.split("\n")[0] or argument)
        picture = f"![{alt}]({resource_url(argument, context)})"
        return picture + (f"\n\n*{caption}*" if caption else "")
    if name == "literalinclude":
        language = str(options.get("language", ""))
        return f"```{language}\n{included_lines(argument, options, context)}\n```"
    if name == "glossary":
        return glossary(body, context)
    if name in DROPPED_DIRECTIVES:
        return ""
    if name == "raw":
        return body if argument.strip() == "html" else ""
    heading = f"**{convert_prose(argument, context)}**\n\n" if argument else ""
    return heading + convert_markdown(body, context)  # only, div, card, list-table...: their content


def included_lines(path: str, options: dict, context: Context) -> str:
    """A {literalinclude}'s text (path relative to the chapter), between its :start-after: and :end-before: lines."""
    text = (Path(__file__).resolve().parents[1] / "book" / context.language / path).resolve().read_text(encoding="utf-8")
    if options.get("start-after"):
        text = text.split(str(options["start-after"]), 1)[1].split("\n", 1)[1]
    if options.get("end-before"):
        text = text.split(str(options["end-before"]), 1)[0].rsplit("\n", 1)[0]
    return text.rstrip("\n")


def glossary(body: str, context: Context) -> str:
    """A {glossary} (terms at the margin, indented definitions) as a list of bold terms."""
    entries: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        if not line.strip():
            continue
        if not line[0].isspace():
            entries.append((line.strip(), []))
        elif entries:
            entries[-1][1].append(line.strip())
    return "\n".join(f"- **{convert_prose(term, context)}**: {convert_prose(' '.join(text), context)}"
                     for term, text in entries)


def resource_url(path: str, context: Context) -> str:
    """An image or download of the book as an absolute URL: the notebook may be opened anywhere (Colab)."""
    if re.match(r"^[a-z]+://", path) or not context.raw_url:
        return path
    inside_book = path.lstrip("/") if path.startswith("/") else posixpath.join(context.language, path)
    return f"{context.raw_url}/book/{posixpath.normpath(inside_book)}"


def convert_prose(text: str, context: Context) -> str:
    """Markdown outside directives: targets, comments and equation labels dropped, roles converted."""
    lines, math = [], False
    source = text.split("\n")
    index = 0
    while index < len(source):
        line = source[index]
        index += 1
        if TARGET.match(line) or line.startswith("%"):
            continue
        line = EQUATION_LABEL.sub(r"\g<math>", line)
        environment = AMS_ENVIRONMENT.match(line)
        if environment and not math:  # amsmath's bare \begin{align}...: Jupyter wants it inside $$
            end = next((k for k in range(index - 1, len(source)) if f"\\end{{{environment['name']}}}" in source[k]), len(source) - 1)
            lines += ["$$", *source[index - 1:end + 1], "$$"]
            index = end + 1
            continue
        if line.count("$$") % 2:
            math = not math
        if line.startswith(": ") and lines and lines[-1].strip() and not math:  # a definition list item
            lines.append(f"- **{lines.pop().strip()}**: {line[2:].strip()}")
            continue
        lines.append(line)
    return convert_inline("\n".join(lines), context)


def convert_inline(text: str, context: Context) -> str:
    """Roles converted, code spans kept as they are, links and substitutions fixed in the text between."""
    output, position = [], 0
    for match in INLINE.finditer(text):
        output.append(plain_text(text[position:match.start()], context))
        output.append(render_role(match["role"], match["body"], context) if match["role"] else match.group(0))
        position = match.end()
    output.append(plain_text(text[position:], context))
    return "".join(output)


def plain_text(text: str, context: Context) -> str:
    """Substitutions {{ name }} and links to MyST targets or chapter sources in text without code."""
    text = SUBSTITUTION.sub(lambda m: context.substitutions.get(m["name"], m.group(0)), text)

    def link(match):
        url, shown = match["url"], match["text"]
        if url.startswith("#") and url[1:] in context.labels:
            return shown or context.labels[url[1:]]
        if url.endswith(".md") and not re.match(r"^[a-z]+://", url):
            return doc_link(shown, url[: -len(".md")], context)
        return match.group(0)

    return LINK.sub(link, text)


def split_role_target(body: str) -> tuple[str, str]:
    """'shown text <target>' -> ('shown text', 'target'); 'target' -> ('', 'target')."""
    match = ROLE_TARGET.match(body.strip())
    return (match["text"].strip(), match["target"].strip()) if match else ("", body.strip())


def doc_link(shown: str, target: str, context: Context) -> str:
    """A link to another chapter: its notebook, written beside this one by `make notebooks`."""
    parts = [part for part in target.split("/") if part not in ("", ".", "..")]
    page = parts[-1] if parts else target
    language = parts[-2] if len(parts) >= 2 and parts[-2] in LANGUAGES else context.language
    title = shown or context.titles.get((language, page), page)
    if not CHAPTER.match(page + ".md"):
        return title  # glossary, references...: pages of the book, not notebooks
    prefix = "" if language == context.language else f"../{language}/"
    return f"[{title}]({prefix}{page}.ipynb)"


def render_role(role: str, body: str, context: Context) -> str:
    """One MyST role as the text a reader should see."""
    role = role.lower()
    if role.startswith("cite"):
        return cite(role, [key.strip() for key in body.split(",") if key.strip()], context)
    shown, target = split_role_target(body)
    if role in ("ref", "numref", "any", "std:ref", "std:numref"):
        title = context.labels.get(target, target)
        return re.sub(r"%s|\{number\}|\{name\}", title, shown) if shown else title
    if role == "doc":
        return doc_link(shown, target, context)
    if role == "math":
        return f"${body}$"
    if role == "eq":
        return shown or f"({target})"
    if role in ("sub", "subscript", "sup", "superscript"):
        return f"<{role[:3]}>{body}</{role[:3]}>"
    if role in CODE_ROLES or ":" in role and role.split(":", 1)[0] in ("py", "std", "c", "cpp", "js"):
        return f"`{shown or target}`"
    if role == "download":
        return f"[{shown or posixpath.basename(target)}]({resource_url(target, context)})"
    return shown or target  # term, index, abbr, guilabel, dfn...


def cite(role: str, keys: list[str], context: Context) -> str:
    """{cite}`a,b` -> '(A et al., 2019; B, 2017)'; {cite:t}`a` -> 'A et al. (2019)'; each linked to the work."""
    parts = []
    for key in keys:
        plain = key[len("zh-"):] if key.startswith("zh-") else key
        if plain not in context.works:
            raise NotebookError(f"citation key {key!r} is not in book/references.bib")
        if plain not in context.cited:
            context.cited.append(plain)
        work = context.works[plain]
        names = author_names(work, context.language)
        text = {"cite:t": f"{names} ({work.year})", "cite:ts": f"{names} ({work.year})", "cite:author": names,
                "cite:year": work.year}.get(role, f"{names}, {work.year}")
        parts.append(f"[{text}]({work.link})" if work.link else text)
    if role in ("cite:t", "cite:ts", "cite:author", "cite:year"):
        return ", ".join(parts)
    return "(" + "; ".join(parts) + ")"


def references_cell(context: Context) -> str:
    """The reference list that ends a notebook: the works it cites, in order of first citation."""
    title = WORDS[context.language]["references"]
    return f"## {title}\n\n" + "\n".join(reference_entry(context.works[key]) for key in context.cited)


LEFTOVERS = [
    (re.compile(r"\{[A-Za-z][\w:+.-]*\}`"), "a MyST role"),
    (re.compile(r"^[ \t>]*(?:`{3,}|~{3,}|:{3,})[ \t]*\{", re.M), "a MyST directive"),
    (re.compile(r"^[ \t>]*:{3,}", re.M), "a ::: fence"),
    (re.compile(r"^[ \t>]*\([^()\s]+\)=[ \t]*$", re.M), "a MyST target"),
    (re.compile(r"^[ \t>]*:[\w-]+:", re.M), "a directive option"),
    (re.compile(r"\{\{[^{}]*\}\}"), "a substitution"),
]


def myst_leftovers(markdown: str) -> list[str]:
    """MyST-only syntax left in Markdown (code blocks and code spans excluded), one description each."""
    lines, kept, fence = markdown.split("\n"), [], None
    for line in lines:
        match = FENCE.match(line)
        if fence is None and match and match["fence"][0] in "`~" and not match["info"].startswith("{"):
            fence = match["fence"]
        elif fence is not None and match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence) and not match["info"]:
            fence = None
        elif fence is None:
            kept.append(line)
    text = INLINE.sub(lambda m: "{" + m["role"] + "}`" if m["role"] else "", "\n".join(kept))
    found = []
    for pattern, what in LEFTOVERS:
        found += [f"{what}: {m.group(0).strip()!r}" for m in pattern.finditer(text)]
    return found


# ------------------------------------------------------------------ notebooks
def clean_code(source: str) -> str | None:
    """A code cell without its export markers; None when nothing else is left (a `#| default_exp` cell)."""
    code = "\n".join(line for line in source.split("\n") if not EXPORT_MARKER.match(line.strip())).strip("\n")
    return code or None


def page_title(path: Path) -> str:
    match = re.search(r"^# (.+)$", path.read_text(encoding="utf-8"), re.M)
    return match.group(1).strip() if match else path.stem


def collect_labels(book: Path) -> dict[str, str]:
    """Every MyST target of the book and what a reference to it shows: the heading or caption after it."""
    labels = {}
    for path in sorted(book.glob("*/*.md")):
        lines = path.read_text(encoding="utf-8").split("\n")
        for index, line in enumerate(lines):
            target = TARGET.match(line)
            if target:
                following = next((l for l in lines[index + 1:] if l.strip()), "")
                labels[target["label"]] = following.lstrip("#").strip() if following.startswith("#") else target["label"]
            name = re.match(r"^:name:\s*(\S+)", line.strip())
            if name:
                caption = next((l for l in lines[index + 1:] if l.strip() and not l.strip().startswith(":")), "")
                labels[name.group(1)] = caption.strip() or name.group(1)
    return labels


def book_context(book: Path, config: dict, url: str, branch: str) -> dict:
    """What every chapter's conversion shares: the bibliography, labels, page titles, substitutions."""
    raw = url.replace("https://github.com/", "https://raw.githubusercontent.com/") + f"/{branch}" if "github.com" in url else ""
    return {
        "works": read_bibliography(book / "references.bib"),
        "labels": collect_labels(book),
        "titles": {(path.parent.name, path.stem): page_title(path) for path in book.glob("*/*.md")},
        "substitutions": {str(k): str(v) for k, v in ((config.get("parse") or {}).get("myst_substitutions") or {}).items()},
        "raw_url": raw,
    }


def notebook_json(chapter: Path, relative_source: str, url: str, branch: str, shared: dict | None = None) -> str:
    """The .ipynb text of one chapter: the install cell, the chapter's cells in plain Markdown, the references."""
    import jupytext
    import nbformat

    language = chapter.parent.name
    context = Context(language=language, **(shared or {"works": {}}))
    notebook = jupytext.read(chapter)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            text = convert_markdown(cell.source, context)
            if text.strip():
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif cell.cell_type == "code":
            code = clean_code(cell.source)
            if code is not None:
                tags = list(cell.metadata.get("tags", []))
                cells.append(nbformat.v4.new_code_cell(code, metadata={"tags": tags} if tags else {}))
    for number, cell in enumerate(cells):
        problems = myst_leftovers(cell.source) if cell.cell_type == "markdown" else []
        if problems:
            raise NotebookError(f"{relative_source}, markdown cell {number + 1}: {problems[0]} left after conversion; "
                                "teach tools/make_notebooks.py to convert it")
    if context.cited:
        cells.append(nbformat.v4.new_markdown_cell(references_cell(context)))
    note = INSTALL_NOTE[language].format(source=relative_source)
    install = nbformat.v4.new_code_cell(INSTALL_CELL.format(
        note=note, purpose=INSTALL_PURPOSE[language], language=language, requirement=f"git+{url}.git@{branch}"))
    notebook.cells = [install, *cells]
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:03d}"
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
    import yaml

    url, branch = repository(config)
    found = chapters(book)
    if not found:
        raise NotebookError(f"{book}: no chapters (book/<lang>/NN_topic.md) found")
    shared = book_context(book, yaml.safe_load(config.read_text(encoding="utf-8")) or {}, url, branch)
    outputs: dict[Path, str] = {}
    for chapter in found:
        relative = chapter.resolve().relative_to(root).as_posix() if chapter.resolve().is_relative_to(root) else chapter.name
        outputs[Path(chapter.parent.name) / chapter.with_suffix(".ipynb").name] = notebook_json(
            chapter, relative, url, branch, shared)
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
