"""Sphinx extension for the bilingual book: language switch, <html lang>, launch links, glyph check.

* Every page under ``en/`` or ``zh/`` gets a visible "English / 中文" switch at the top (the template
  ``_templates/language-switch.html``, placed in the article header by ``_config.yml``) that links to
  the same page in the other language; the landing page links to both prefaces.
* Pages under ``zh/`` are served with ``<html lang="zh-CN">``, English pages with ``lang="en"``, and
  every page names its twin with ``<link rel="alternate" hreflang=...>``.
* The Colab and Binder launch buttons of sphinx-book-theme point at the page's own source
  (``book/en/03_attention.md``). We point them at the runnable notebook that ``make notebooks``
  writes instead: ``notebooks/en/03_attention.ipynb``. The repository URL and branch are read from
  the theme options, which Jupyter Book fills from ``repository:`` in ``_config.yml`` (the one place
  where the URL is written).
* In Chinese pages a line break between two Chinese characters is dropped instead of becoming
  a space (the sources wrap lines; HTML would show each break as a stray space mid-sentence).
* Scripts that end up twice in a page are kept once (sphinx-thebe registers its inline
  configuration twice under Jupyter Book, and the second copy is a JavaScript error:
  "Identifier 'THEBE_JS_URL' has already been declared").
* The build fails when matplotlib could not draw a character of a figure ("Glyph ... missing from
  font(s)"): a figure with empty boxes instead of Chinese text is a broken page.
* Chinese pages get the site's labels in Chinese ("目录", "搜索", "上一页", ...): the build runs in
  English (``language: en``), so for each ``zh/`` page the templates get the Chinese catalogs of
  Sphinx, pydata-sphinx-theme and sphinx-book-theme instead.
* Previous/next links stay within a language: the last English page has no "next" into the Chinese
  part, and the first Chinese page no "previous" into the English one.
* The landing page's table of chapters is made from the table of contents (``_toc.yml``) and each
  page's first heading, where ``index.md`` holds the marker line ``<!-- chapter-table -->``: a new
  chapter or appendix appears there without anyone editing the landing page.
* The kernels that execute the chapters get ``kernel_environment`` from ``_config.yml`` (added to
  the build's environment before execution), and ``OMP_NUM_THREADS`` defaults to
  ``bert_annotated.runtime.cpu_thread_count()``: a plain ``jupyter-book build book`` runs exactly
  as ``make book`` does.
* The build talks to those kernels over CurveZMQ-encrypted sockets (jupyter_client's
  ``KernelManager.transport_encryption = "auto"``), so that ipykernel does not warn "Kernel is
  running over TCP without encryption" once per chapter.
* On Chinese pages the toggle of a folded code cell (``hide-input``) reads "显示代码" / "隐藏代码"
  instead of MyST-NB's "Show code cell source" / "Hide code cell source".
* ``_static/bilingual.css`` widens the text column (folding the page's contents behind a button from
  1200 to 1599 px); ``_static/bilingual.js`` makes the article header's two sidebar buttons work.
"""
from __future__ import annotations

import gettext
import json
import os
import re
from pathlib import Path

from docutils import nodes
from sphinx.errors import SphinxError
from sphinx.util import logging

LANGUAGES = {"en": ("English", "en"), "zh": ("中文", "zh-CN")}
LANDING = {"en": "en/00_preface", "zh": "zh/00_preface"}
NOTEBOOK_FOLDER = "notebooks"
GLYPH_MISSING = re.compile(r"Glyph \d+ .*?missing from (?:current )?font", re.S)

logger = logging.getLogger(__name__)


class MissingGlyphError(SphinxError):
    category = "Figure with missing glyphs"


def page_language(pagename: str) -> str | None:
    """'en' or 'zh' for a page of one language part, None for shared pages such as the landing page."""
    first = pagename.split("/", 1)[0]
    return first if first in LANGUAGES and "/" in pagename else None


def twin_page(pagename: str) -> str | None:
    """The same page in the other language: en/03_attention <-> zh/03_attention."""
    language = page_language(pagename)
    if language is None:
        return None
    other = "zh" if language == "en" else "en"
    return other + pagename[len(language):]


def notebook_path(pagename: str) -> str:
    """Where `make notebooks` writes the runnable notebook of a chapter, relative to the repository."""
    return f"{NOTEBOOK_FOLDER}/{pagename}.ipynb"


def missing_glyphs(notebook: dict) -> list[str]:
    """The 'Glyph ... missing' warnings that matplotlib wrote to stderr in an executed notebook."""
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                found += [line.strip() for line in text.splitlines() if GLYPH_MISSING.search(line)]
    return found


def _language_switch(app, pagename: str, context: dict) -> list[dict]:
    pathto = context["pathto"]
    language = page_language(pagename)
    items = []
    for code, (label, lang) in LANGUAGES.items():
        if language is None:  # landing page: both editions
            target = LANDING[code]
        elif code == language:
            items.append({"label": label, "lang": lang, "current": True, "href": None})
            continue
        else:
            target = twin_page(pagename)
        href = pathto(target) if target in app.env.found_docs else None
        items.append({"label": label, "lang": lang, "current": False, "href": href})
    return items


def add_language_context(app, pagename, templatename, context, doctree):
    language = page_language(pagename)
    if language is not None:
        context["language"] = LANGUAGES[language][1]
    context["language_switch"] = _language_switch(app, pagename, context)
    twin = twin_page(pagename)
    if twin is not None and twin in app.env.found_docs:
        lang = LANGUAGES[twin.split("/", 1)[0]][1]
        context["metatags"] = context.get("metatags", "") + (
            f'\n<link rel="alternate" hreflang="{lang}" href="{context["pathto"](twin)}" />'
        )


def point_launch_buttons_at_notebooks(app, pagename, templatename, context, doctree):
    """Rewrite the theme's Colab/Binder URLs from the page's source file to notebooks/<lang>/<page>.ipynb."""
    if page_language(pagename) is None:
        return
    options = app.config.html_theme_options
    launch = options.get("launch_buttons", {})
    book_folder = options.get("path_to_docs", "").strip("/")
    # the theme links the page's source, or an .ipynb of the same name when one lies beside it
    theme_path = re.compile(re.escape(f"{book_folder + '/' if book_folder else ''}{pagename}") + r"\.(?:md|ipynb)\b")
    ours = notebook_path(pagename)
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if button.get("text") in ("Colab", "Binder") and theme_path.search(url):
                button["url"] = theme_path.sub(ours, url)
            elif button.get("text") in ("Colab", "Binder"):
                raise SphinxError(f"{pagename}: unexpected {button['text']} launch URL {url}")
    if launch.get("colab_url") or launch.get("binderhub_url"):
        context["launch_notebook"] = ours


def check_executed_notebook(app, doctree):
    """Fail the build when an executed chapter drew characters its font does not have."""
    docname = app.env.docname
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
    if not executed.exists():
        return
    problems = missing_glyphs(json.loads(executed.read_text(encoding="utf-8")))
    if problems:
        raise MissingGlyphError(
            f"{docname}: matplotlib drew characters that no installed font has ({problems[0]}; "
            f"{len(problems)} warning(s) in all). Install a CJK font (Debian: apt-get install fonts-noto-cjk), "
            "then delete matplotlib's font cache (python -c \"import matplotlib.font_manager as f; "
            "f._load_fontmanager(try_read_cache=False)\")."
        )


_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef\u201c\u201d\u2018\u2019"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
_AFTER_FULL_STOP = re.compile(r"(?<=[\u3002\uff0c\uff1b\uff1a\uff01\uff1f\u3001\uff09])[ \t]*\n[ \t]*")
_CODE_LIKE = (nodes.literal_block, nodes.literal, nodes.math, nodes.math_block, nodes.raw, nodes.comment)


def join_chinese_lines(text: str) -> str:
    """Drop the line breaks of wrapped Chinese prose that a browser would show as spaces."""
    return _AFTER_FULL_STOP.sub("", _CJK_BREAK.sub("", text))


def remove_breaks_in_chinese(app, doctree, docname):
    if page_language(docname) != "zh":
        return
    for text in list(doctree.findall(nodes.Text)):
        parent = text.parent
        if parent is None or any(isinstance(a, _CODE_LIKE) for a in _ancestors(parent)):
            continue
        value = str(text)
        if value.strip() == "" and "\n" in value:  # MyST turns a soft line break into its own Text node
            index = parent.index(text)
            before = parent[index - 1].astext()[-1:] if index > 0 else ""
            after = parent[index + 1].astext()[:1] if index + 1 < len(parent) else ""
            joined = value
            if before and after:
                combined = join_chinese_lines(before + value + after)  # only the whitespace can go
                joined = combined[len(before):len(combined) - len(after)]
        else:
            joined = join_chinese_lines(value)
        if joined != value:
            parent.replace(text, nodes.Text(joined))


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """Keep the first of identical <script> entries: redeclaring a `const` throws in the browser."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script) or ""  # an inline script's filename is None or ""
        attributes = getattr(script, "attributes", {})
        identity = (str(filename), tuple(sorted((key, str(value)) for key, value in attributes.items())))
        if identity not in seen:
            seen.add(identity)
            unique.append(script)
    context["script_files"] = unique


# ------------------------------------------------------------------ site labels in the page's language
# Labels that the themes' own Chinese catalogs lack or word differently (pydata-sphinx-theme 0.17,
# sphinx-book-theme 1.3, Sphinx 7.4), and the "Search this book..." placeholder that Jupyter Book sets
# as a theme option. Attribute labels hard-coded in templates are translated after the build.
EXTRA_ZH_LABELS = {
    "Search this book...": "搜索本书……",
    "Color mode": "颜色模式",
    "System Settings": "跟随系统",
    "Toggle primary sidebar": "显示或隐藏目录栏",
    "Toggle secondary sidebar": "显示或隐藏本页目录",
    "Launch interactive content": "运行本章",
    "Download this page": "下载此页面",
    "Print to PDF": "打印为 PDF",
    "Launch on Binder": "在 Binder 上运行",
    "Launch on Colab": "在 Colab 上运行",
    "Source repository": "源码仓库",
    "Link to this heading": "指向本节的链接",
    "Link to this equation": "指向本公式的链接",
    "Link to this image": "指向本图的链接",
    "Link to this table": "指向本表的链接",
    "Link to this code": "指向本段代码的链接",
    "Link to this definition": "指向本定义的链接",
    "Main": "全书目录",
    "Page": "本页目录",
    "Toggle hidden content": "显示或隐藏代码",  # MyST-NB: the toggle of a folded code cell
}
_LABEL_ATTRIBUTE = re.compile(r'(?P<attribute>\b(?:title|aria-label|data-bs-title|placeholder)=")(?P<label>[^"<>]+)"')


def translate_attribute_labels(html: str, table: dict[str, str]) -> str:
    """Tooltips and ARIA labels that Sphinx or the themes wrote in English outside any catalog, in Chinese."""
    return _LABEL_ATTRIBUTE.sub(
        lambda m: f'{m["attribute"]}{table.get(m["label"], m["label"])}"', html)


def translate_written_pages(app, exception):
    """After the build: the few labels hard-coded in the themes' templates or Python, on every zh/ page."""
    if exception is not None or app.builder.format != "html":
        return
    for page in sorted((Path(app.outdir) / "zh").glob("*.html")):
        html = page.read_text(encoding="utf-8")
        translated = translate_attribute_labels(html, EXTRA_ZH_LABELS)
        if translated != html:
            page.write_text(translated, encoding="utf-8")


class _LabelTable(gettext.NullTranslations):
    """A gettext catalog from a dict, first in the Chinese chain; what it lacks goes to the themes' catalogs."""

    def __init__(self, table: dict[str, str]):
        super().__init__()
        self.table = table

    def gettext(self, message):
        if message in self.table:
            return self.table[message]
        return self._fallback.gettext(message) if self._fallback else message

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)


def _catalog(domains: list[tuple[str, Path]], language: str) -> gettext.NullTranslations:
    """One translations object chaining the gettext catalogs `domains` (domain, locale folder) for `language`."""
    found = [gettext.translation(domain, str(folder), languages=[language], fallback=True) for domain, folder in domains]
    found = [catalog for catalog in found if type(catalog) is not gettext.NullTranslations]
    if language.startswith("zh"):  # first: it also corrects a Taiwanese wording (列印) in the zh_CN catalog
        found.insert(0, _LabelTable(EXTRA_ZH_LABELS))
    if not found:
        return gettext.NullTranslations()
    for fallback in found[1:]:
        found[0].add_fallback(fallback)
    return found[0]


def theme_catalogs(language: str) -> dict[str, gettext.NullTranslations]:
    """The 'sphinx' catalog (Sphinx + pydata-sphinx-theme labels) and sphinx-book-theme's 'booktheme' one."""
    import pydata_sphinx_theme
    import sphinx
    import sphinx_book_theme

    book_theme = Path(sphinx_book_theme.__file__).parent / "theme" / "sphinx_book_theme" / "static" / "locales"
    return {
        "sphinx": _catalog([("sphinx", Path(sphinx.__file__).parent / "locale"),
                            ("sphinx", Path(pydata_sphinx_theme.__file__).parent / "locale")], language),
        "booktheme": _catalog([("booktheme", book_theme), ("sphinx", Path(sphinx.__file__).parent / "locale"),
                               ("sphinx", Path(pydata_sphinx_theme.__file__).parent / "locale")], language),
    }


def translate_site_labels(app, pagename, templatename, context, doctree):
    """Chinese pages: render the theme's labels with the Chinese catalogs; every other page: the build's own."""
    templates = getattr(app.builder, "templates", None)
    environment = getattr(templates, "environment", None)
    if environment is None or not hasattr(environment, "install_gettext_translations"):
        return
    language = page_language(pagename)
    if language != "zh":
        environment.install_gettext_translations(app.translator)
        return
    if not hasattr(app, "_bilingual_catalogs"):
        app._bilingual_catalogs = theme_catalogs(LANGUAGES["zh"][1].replace("-", "_"))
    catalogs = app._bilingual_catalogs
    environment.install_gettext_translations(catalogs["sphinx"])
    context["translate"] = catalogs["booktheme"].gettext
    search_text = (app.config.html_theme_options or {}).get("search_bar_text")
    context["theme_search_bar_text"] = catalogs["booktheme"].gettext(search_text or "Search this book...")


# ------------------------------------------------------------------ previous / next within a language
def keep_prev_next_in_language(app, pagename, templatename, context, doctree):
    """Drop a previous/next link that would cross from one language part into the other."""
    language = page_language(pagename)
    if language is None:
        return
    parent, previous, following = app.env.collect_relations().get(pagename, (None, None, None))
    for key, neighbour in (("prev", previous), ("next", following)):
        if neighbour is not None and page_language(neighbour) not in (None, language):
            context[key] = None


# ------------------------------------------------------------------ the kernels' environment
def kernel_environment(requested: dict, current: dict) -> dict[str, str]:
    """The variables to set before the chapters run: `requested` from _config.yml, merged into `current`.

    PYTHONWARNINGS filters are appended to any the user set; other variables the user set win.
    OMP_NUM_THREADS defaults to bert_annotated.runtime.cpu_thread_count() (all CPUs this process may use,
    within a cgroup quota), so that PyTorch does not oversubscribe a busy machine.
    """
    changes = {}
    for name, value in (requested or {}).items():
        value = str(value)
        if name == "PYTHONWARNINGS" and current.get(name):
            filters = current[name].split(",")
            changes[name] = current[name] if value in filters else ",".join(filters + [value])
        elif not current.get(name):
            changes[name] = value
    if not current.get("OMP_NUM_THREADS") and "OMP_NUM_THREADS" not in changes:
        try:
            from bert_annotated.runtime import cpu_thread_count
            changes["OMP_NUM_THREADS"] = str(cpu_thread_count())
        except ImportError:  # the package is not installed: leave PyTorch's default
            pass
    return changes


def set_kernel_environment(app, config):
    os.environ.update(kernel_environment(config.kernel_environment, dict(os.environ)))


# ------------------------------------------------------------------ encrypted kernel connections
def encrypt_kernel_connections(app, config):
    """Have the kernels that run the chapters use CurveZMQ, which ipykernel >= 7.4 asks for.

    ipykernel warns "Kernel is running over TCP without encryption ..." when its manager gives it no
    CurveZMQ keys; jupyter_client (>= 8.9) provisions them when ``KernelManager.transport_encryption`` is
    "auto" and the kernelspec declares ``supported_encryption: curve`` (ipykernel's does). That setting is
    traitlets configuration, which MyST-NB and jupyter-cache have no way to pass to the NotebookClient
    that starts the kernels, so the client's kernel managers get it here. Nothing changes with an older
    jupyter_client, with a pyzmq built without CurveZMQ, or where "transport_encryption" is configured.
    """
    try:
        import zmq
        from nbclient import NotebookClient
    except ImportError:
        return
    if getattr(NotebookClient.create_kernel_manager, "encrypts_kernel_connections", False) or not zmq.has("curve"):
        return
    create_kernel_manager = NotebookClient.create_kernel_manager

    def create_encrypted_kernel_manager(client):
        manager = create_kernel_manager(client)
        sections = [manager.config.get(cls.__name__, {}) for cls in type(manager).mro()]
        configured = any("transport_encryption" in section for section in sections)
        if manager.has_trait("transport_encryption") and not configured and manager.transport_encryption == "disabled":
            manager.transport_encryption = "auto"
        return manager

    create_encrypted_kernel_manager.encrypts_kernel_connections = True
    NotebookClient.create_kernel_manager = create_encrypted_kernel_manager


# ------------------------------------------------------------------ folded code cells in Chinese
# MyST-NB's labels of a `hide-input` cell's toggle (its defaults, "Show code cell {type}" with {type}
# source, content, output or outputs: one setting for the whole build) and their Chinese.
ZH_CELL_TOGGLES = {
    "Show code cell source": "显示代码", "Hide code cell source": "隐藏代码",
    "Show code cell content": "显示代码单元", "Hide code cell content": "隐藏代码单元",
    "Show code cell output": "显示输出", "Hide code cell output": "隐藏输出",
    "Show code cell outputs": "显示输出", "Hide code cell outputs": "隐藏输出",
}


def translate_cell_toggles(app, doctree, docname):
    """On zh/ pages, the toggles that MyST-NB put on folded cells (after its HideInputCells post-transform)."""
    if page_language(docname) != "zh":
        return
    for node in doctree.findall(nodes.Element):
        for key in ("prompt_show", "prompt_hide"):
            if node.get(key) in ZH_CELL_TOGGLES:
                node[key] = ZH_CELL_TOGGLES[node[key]]


CHAPTER_TABLE_MARKER = "<!-- chapter-table -->"
HEADING_NUMBER = re.compile(r"^#\s+(?:(?P<number>\d\d)|(?:Appendix|附录)\s+(?P<letter>[A-Z]))\s*·\s*(?P<title>.+?)\s*$")


def page_title(path: Path) -> tuple[str, str]:
    """(number or appendix letter or '', title) from a page's first '# ' heading ('# 04 · The encoder')."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            match = HEADING_NUMBER.match(line)
            if match:
                return match.group("number") or match.group("letter"), match.group("title")
            return "", line[2:].strip()
    raise ValueError(f"{path}: no '# ' heading to take the page's title from")


def chapter_table(book: Path) -> str:
    """The landing page's table: one row per English page of the toc, with its Chinese twin."""
    import yaml

    toc = yaml.safe_load((book / "_toc.yml").read_text(encoding="utf-8"))
    english = [entry["file"] for part in toc["parts"] for entry in part["chapters"] if entry["file"].startswith("en/")]
    rows = ["| | English | 中文 |", "|---|---|---|"]
    for page in english:
        twin = twin_page(page)
        number, title = page_title(book / f"{page}.md")
        _, chinese = page_title(book / f"{twin}.md")
        rows.append(f"| {number} | [{title}]({page}.md) | [{chinese}]({twin}.md) |")
    return "\n".join(rows)


def insert_chapter_table(app, docname, source):
    if docname == "index" and CHAPTER_TABLE_MARKER in source[0]:
        source[0] = source[0].replace(CHAPTER_TABLE_MARKER, chapter_table(Path(app.srcdir)))


def setup(app):
    app.connect("source-read", insert_chapter_table)
    app.add_config_value("kernel_environment", {}, "env", [dict])
    app.connect("config-inited", set_kernel_environment)
    app.connect("config-inited", encrypt_kernel_connections)
    app.connect("html-page-context", translate_site_labels, priority=600)  # after sphinx-book-theme's (500)
    app.connect("html-page-context", keep_prev_next_in_language, priority=450)
    app.connect("build-finished", translate_written_pages)
    app.connect("html-page-context", drop_duplicate_scripts, priority=950)
    app.connect("html-page-context", add_language_context, priority=400)  # before the theme drops empty templates
    app.connect("html-page-context", point_launch_buttons_at_notebooks, priority=900)
    app.connect("doctree-read", check_executed_notebook)
    app.connect("doctree-resolved", remove_breaks_in_chinese)
    app.connect("doctree-resolved", translate_cell_toggles)
    app.add_css_file("bilingual.css")
    app.add_js_file("bilingual.js")  # the article header's sidebar buttons
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
