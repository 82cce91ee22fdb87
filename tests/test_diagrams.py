"""Every diagram of the book, drawn in both editions exactly as its chapter draws it.

A diagram cell is a chapter's code cell that calls `show_diagram` (appendix I). The test runs the
chapter's own setup cells (listed in SETUP by a line each holds; once per chapter, since the data does not
depend on the language), then, for each language, the diagram cells of that edition in its folder with its
matplotlibrc, on matplotlib's Agg backend. Each figure is saved as a PNG with missing-glyph warnings
turned into errors, and must keep all its text inside the figure and at 8 pt or more, carry labels in the
edition's language (Chinese characters in zh, none in en) and pass the book's own `check_diagram` (text
inside its box, no two labels on top of each other). Each diagram cell must also give its image alt text
in its edition's language. Which chapters draw diagrams, and which `draw_*` functions they call, is read
from the chapters and from `bert_annotated.diagrams`, so a new diagram cannot be left out.
"""
from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import bert_annotated.diagrams as diagrams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
exporter = sys.modules.get("exporter")  # tools/export.py, as tests/test_export.py loads it
if exporter is None:
    spec = importlib.util.spec_from_file_location("exporter", ROOT / "tools" / "export.py")
    exporter = sys.modules["exporter"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)

LANGUAGES = ("en", "zh")
# The cells a chapter runs before its diagram cells, each found by a line it holds (the export cells come
# from the package instead: the namespace starts as the globals of every module the chapter exports into).
SETUP = {
    "01_tokenization": ["toy_vocab = set(SPECIAL_TOKENS"],
    "02_embeddings": ['pair = tokenizer.encode("my dog is cute", "he likes playing")'],
    "03_attention": ["import matplotlib.pyplot as plt", "batch_size, num_heads, seq_len, head_dim = 2, 1, 5, 4",
                     "padding_mask = torch.tensor("],
    "04_encoder": ["import math", 'if device == "cuda":'],
    "05_masked_lm": ["import tempfile", "tiny_vocab = ["],
    "06_next_sentence": ["toy_documents = ["],
    "08_pretraining": ["import dataclasses", "on_colab_gpu = ", "tiny_model = BertForPreTraining(tiny_config)"],
    "10_fine_tuning": [],
    "11_question_answering": ["chapter_start = time.perf_counter()", "squad_sample = read_squad_json(",
                              "encoder, tokenizer = load_pretrained_encoder()", "spans = best_spans("],
    "appendix_i_diagrams": [],
}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
GLYPH_MISSING = r"(?s).*Glyph .* missing from (current )?font"
CALLED_DRAW = re.compile(r"^\s*(draw_\w+)\(", re.M)  # a diagram function called at the top of a cell
# No label under 8 pt: 11 pixels in the book's PNG (100 dpi), shown at that size on a wide screen and
# reached on a phone by zooming in (an 8-inch diagram on a 360-pixel-wide screen is shrunk to 45 %).
SMALLEST_FONT = 8


def chapter_paths(language: str) -> list[Path]:
    return exporter.chapter_paths(ROOT / "book" / language)


def diagram_cells(path: Path) -> list:
    """The cells of a chapter that draw and show a diagram (not the export cells that define one)."""
    cells = exporter.parse_myst(path).code_cells
    return [c for c in cells if "show_diagram(" in c.source and not c.source.startswith("#| export")]


def chapter_namespace(path: Path) -> dict:
    """What a chapter's export cells define, as the package holds it: the globals of their modules."""
    notebook = exporter.parse_myst(path)
    namespace: dict = {}
    default = None
    for cell in notebook.code_cells:
        directives, _ = exporter.cell_directives(cell, path)
        default = directives.get("default_exp", default)
        if "export" in directives:
            module = directives["export"] or default
            namespace.update({k: v for k, v in vars(importlib.import_module(f"bert_annotated.{module}")).items()
                              if not k.startswith("__")})
    return namespace


def setup_cells(path: Path) -> list:
    cells = exporter.parse_myst(path).code_cells
    chosen = []
    for marker in SETUP[path.stem]:
        found = [c for c in cells if marker in c.source and not c.source.startswith("#| export")]
        assert len(found) == 1, (f"{path.name}: {len(found)} cells hold {marker!r}; update SETUP in "
                                 f"tests/test_diagrams.py to the cells its diagrams need")
        chosen.append(found[0])
    return sorted(chosen, key=lambda c: c.index)


_SETUP: dict[str, dict] = {}


def setup_namespace(chapter: str) -> dict:
    """The chapter's namespace after its setup cells, run once in book/en for both editions: the cells are
    the same in both (tests/test_export.py), and what they compute does not depend on the language."""
    if chapter not in _SETUP:
        path, folder = ROOT / "book" / "en" / f"{chapter}.md", Path.cwd()
        namespace = chapter_namespace(path)
        os.chdir(path.parent)
        try:
            with matplotlib.rc_context(fname=str(path.parent / "matplotlibrc")), warnings.catch_warnings():
                warnings.filterwarnings("error", message=GLYPH_MISSING, category=UserWarning)
                for cell in setup_cells(path):
                    run_cell(cell, namespace, path)
        finally:
            os.chdir(folder)
            plt.close("all")
        _SETUP[chapter] = namespace
    return _SETUP[chapter]


def labels(figure) -> list[Text]:
    """The visible, non-empty texts of a figure: its axes' texts and titles, and its own."""
    texts = list(figure.texts) + [t for axis in figure.axes for t in (*axis.texts, axis.title)]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def render(figure) -> bytes:
    """The figure as the book's PNG (the inline backend's dpi and tight box); a missing glyph is an error."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=GLYPH_MISSING, category=UserWarning)
        figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight")
    return buffer.getvalue()


def check_figure(figure, language: str, where: str) -> None:
    png = render(figure)
    assert png.startswith(b"\x89PNG"), f"{where}: not a PNG"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=GLYPH_MISSING, category=UserWarning)
        figure.canvas.draw()
    renderer, frame = figure.canvas.get_renderer(), figure.bbox
    texts = labels(figure)
    assert texts, f"{where}: a diagram without text"
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert (extent.x0 >= frame.x0 - 1 and extent.x1 <= frame.x1 + 1 and extent.y0 >= frame.y0 - 1
                and extent.y1 <= frame.y1 + 1), f"{where}: {text.get_text()!r} is clipped by the figure's edge"
    chinese = [t.get_text() for t in texts if CJK.search(t.get_text())]
    if language == "zh":
        assert chinese, f"{where}: no label of the Chinese edition is in Chinese"
    else:
        assert not chinese, f"{where}: Chinese labels in the English edition: {chinese[:3]}"
    small = [t.get_text() for t in texts if t.get_fontsize() < SMALLEST_FONT]
    assert not small, f"{where}: labels under {SMALLEST_FONT} pt: {small[:3]}"
    diagrams.check_diagram(figure)  # what show_diagram runs: inside its box, no overlaps


def run_cell(cell, namespace: dict, path: Path) -> None:
    """Run a chapter's cell as its kernel would (plain Python: this test has no IPython to run a magic)."""
    assert not re.search(r"^\s*[%!]", cell.source, re.M), f"{path.name}:{cell.line}: IPython syntax in a diagram cell"
    exec(compile(cell.source, f"{path}:{cell.line}", "exec"), namespace)


# ------------------------------------------------------------------ coverage: no diagram left out
def test_setup_lists_exactly_the_chapters_that_draw_diagrams():
    for language in LANGUAGES:
        drawing = {p.stem for p in chapter_paths(language) if diagram_cells(p)}
        assert drawing == set(SETUP), (f"book/{language}: chapters with diagram cells {sorted(drawing)} "
                                       f"but SETUP lists {sorted(SETUP)}")


def test_every_diagram_function_is_drawn_by_a_chapter_in_both_editions():
    public = {name for name in diagrams.__all__ if name.startswith("draw_")}
    names_used = {name: getattr(diagrams, name).__code__.co_names for name in public}  # the globals each one calls
    for language in LANGUAGES:
        called = {name for path in chapter_paths(language) for cell in diagram_cells(path)
                  for name in CALLED_DRAW.findall(cell.source)}
        assert called <= public, f"book/{language}: diagram cells call {sorted(called - public)}, not in the package"
        assert len(called) >= 11, f"book/{language}: only {sorted(called)} are drawn"
        # a public draw_ function that no cell calls must be a part that a diagram function draws
        parts = {name for name in public for caller in called if name in names_used[caller]}
        assert public - called <= parts, f"book/{language}: {sorted(public - called - parts)} are never drawn"


# ------------------------------------------------------------------ every diagram, both editions
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("chapter", sorted(SETUP))
def test_diagrams_render_in_both_languages(chapter, language, monkeypatch):
    path = ROOT / "book" / language / f"{chapter}.md"
    cells = diagram_cells(path)
    assert cells, f"{path.name} draws no diagram; remove it from SETUP"
    shown = []
    monkeypatch.delenv("BERT_BOOK_LANG", raising=False)
    namespace = dict(setup_namespace(chapter))
    monkeypatch.chdir(path.parent)  # where the chapter's kernel runs: tr() reads the folder's language
    monkeypatch.setattr(diagrams, "show_diagram", shown.append)  # for the cells that import it
    namespace["show_diagram"] = shown.append  # and for appendix I, which defines it
    with matplotlib.rc_context(fname=str(path.parent / "matplotlibrc")), warnings.catch_warnings():
        warnings.filterwarnings("error", message=GLYPH_MISSING, category=UserWarning)
        try:
            for cell in cells:
                before = len(shown)
                run_cell(cell, namespace, path)
                assert len(shown) > before, f"{path.name}:{cell.line}: the cell showed no diagram"
                for figure in shown[before:]:
                    called = CALLED_DRAW.findall(cell.source) or ["(a diagram)"]
                    check_figure(figure, language, f"{language}/{path.name}:{cell.line} {called[0]}")
        finally:
            plt.close("all")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("chapter", sorted(SETUP))
def test_every_diagram_has_alt_text_in_its_editions_language(chapter, language):
    """MyST-NB writes a cell's `mystnb.image.alt` into the <img alt="..."> of the image the cell shows."""
    path = ROOT / "book" / language / f"{chapter}.md"
    read, config = pytest.importorskip("myst_nb.core.read"), pytest.importorskip("myst_nb.core.config")
    book_cells = [c for c in read.read_myst_markdown_notebook(path.read_text(encoding="utf-8")).cells
                  if c.cell_type == "code"]  # the cells as the book renders them
    for cell in diagram_cells(path):
        where = f"book/{language}/{chapter}.md:{cell.line}"
        assert cell.alt, (f'{where}: a diagram without alt text; add the line :mystnb: {{image: {{alt: "..."}}}} '
                          "after the cell's tags (CONTRIBUTING.md)")
        image = config.NbParserConfig().get_cell_level_config("render_image_options", book_cells[cell.index].metadata,
                                                              lambda message, kind: pytest.fail(f"{where}: {message}"))
        assert image == {"alt": cell.alt}, f"{where}: MyST-NB reads the image options {image}"
        assert len(cell.alt) >= (30 if language == "zh" else 60), f"{where}: alt text too short to describe the diagram"
        if language == "zh":
            assert CJK.search(cell.alt), f"{where}: the Chinese edition's alt text is not in Chinese"
        else:
            assert not CJK.search(cell.alt), f"{where}: Chinese in the English edition's alt text"


# ------------------------------------------------------------------ the checks themselves can fail
def test_a_missing_glyph_fails_the_rendering():
    figure, axis = diagrams.diagram_axes(4, 1.5)
    diagrams.note(axis, 2, 0.75, "\U000f0000")  # a private-use character that no font draws
    try:
        with pytest.raises(UserWarning, match="missing from"):
            render(figure)
    finally:
        plt.close(figure)


def test_chinese_labels_need_the_books_matplotlibrc():
    """Without the CJK font that book/zh/matplotlibrc selects, a Chinese label is a missing glyph."""
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}):
        figure, axis = diagrams.diagram_axes(4, 1.5)
        diagrams.note(axis, 2, 0.75, "词元")
        try:
            with pytest.raises(UserWarning, match="missing from"):
                render(figure)
        finally:
            plt.close(figure)
    with matplotlib.rc_context(fname=str(ROOT / "book" / "zh" / "matplotlibrc")):
        figure, axis = diagrams.diagram_axes(4, 1.5)
        diagrams.note(axis, 2, 0.75, "词元")
        try:
            assert render(figure).startswith(b"\x89PNG")
        finally:
            plt.close(figure)


def test_a_label_outside_the_figure_or_in_the_wrong_language_fails():
    cases = (("en", "token", 3.95, 9, "clipped"), ("zh", "token", 2, 9, "no label"),
             ("en", "词元", 2, 9, "Chinese labels"), ("en", "token", 2, 7, "under 8 pt"))
    for language, text, x, size, words in cases:
        with matplotlib.rc_context(fname=str(ROOT / "book" / language / "matplotlibrc")):
            figure, axis = diagrams.diagram_axes(4, 1.5)
            diagrams.note(axis, x, 0.75, text, ha="left", fontsize=size)
            try:
                with pytest.raises(AssertionError, match=words):
                    check_figure(figure, language, "test")
            finally:
                plt.close(figure)
