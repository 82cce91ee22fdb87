"""The static detectors of tools/book_check.py, on small HTML snippets (no browser, no built book)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("book_check", ROOT / "tools" / "book_check.py")
book_check = importlib.util.module_from_spec(spec)
sys.modules["book_check"] = book_check
spec.loader.exec_module(book_check)

# What MyST-NB writes for a cell whose last expression is a matplotlib Figure under the Agg backend.
FIGURE_OUTPUT = (
    '<div class="cell docutils container"><div class="cell_input docutils container"><div class="highlight-ipython3 '
    'notranslate"><div class="highlight"><pre><span></span><span class="n">figure</span></pre></div></div></div>'
    '<div class="cell_output docutils container"><div class="output text_plain highlight-myst-ansi notranslate">'
    '<div class="highlight"><pre><span></span>&lt;Figure size 640x400 with 1 Axes&gt;</pre></div></div></div></div>'
)


def test_a_figure_rendered_as_text_is_found_in_cell_outputs():
    problems = book_check.static_problems(FIGURE_OUTPUT)
    assert len(problems) == 1 and "<Figure size 640x400 with 1 Axes>" in problems[0]
    two = FIGURE_OUTPUT.replace("640x400 with 1 Axes", "1200.5x400 with 3 Axes")
    assert "<Figure size 1200.5x400 with 3 Axes>" in book_check.static_problems(two)[0]


def test_the_figure_text_in_prose_or_code_is_not_a_problem():
    prose = "<p>A bare figure shows as <code>&lt;Figure size 640x400 with 1 Axes&gt;</code>.</p>"
    drawn = ('<div class="cell_output docutils container"><img alt="_images/plot.png" src="_images/plot.png" />'
             '<div class="output text_plain"><pre>accuracy 0.91</pre></div></div>')
    assert book_check.static_problems(prose + drawn) == []


def test_backslash_escapes_in_text_macros_are_raw_tex():
    inline = '<p>The cap <span class="math notranslate nohighlight">\\(\\texttt{max\\_predictions\\_per\\_seq} = 20\\)</span>.</p>'
    problems = book_check.static_problems(inline)
    assert len(problems) == 1 and "\\texttt{max\\_predictions\\_per\\_seq}" in problems[0]
    display = '<div class="math notranslate nohighlight">\\[n = \\min(\\text{max\\_len}, \\lceil 0.15 L \\rceil)\\]</div>'
    assert "\\text{max\\_len}" in book_check.static_problems(display)[0]


def test_math_that_mathjax_renders_is_not_raw_tex():
    good = ('<span class="math notranslate nohighlight">\\(\\mathtt{max\\_predictions} + \\text{ tokens} '
            '+ \\texttt{cls}\\)</span><div class="math notranslate nohighlight">\\[\\mathrm{softmax}(x)\\]</div>')
    assert book_check.static_problems(good) == []
    assert book_check.raw_tex_in_math("\\textbf{a {nested} group} + \\mbox{b\\,c}") == ["\\mbox{b\\,c}"]


def test_dollar_math_left_in_prose_is_found_but_prices_and_code_are_not():
    assert book_check.static_problems("<p>The loss $L = -\\log p$ was not rendered.</p>") == [
        "math left as raw text: '$L = -\\\\log p$'"]
    assert book_check.static_problems("<p>It costs $5 and $10, or <code>$x$</code>.</p><pre>$y$</pre>") == []


def test_latex_macros_left_in_the_text_are_found():
    entry = '<div class="citation"><p>Google Research. BERT. GitHub repository (\\texttt create_pretraining_data.py), 2018.</p></div>'
    problems = book_check.static_problems(entry)
    assert len(problems) == 1 and "raw TeX shown in the text" in problems[0] and "texttt" in problems[0]
    assert book_check.static_problems("<p>The macro <code>\\texttt{x}</code> is code, not text.</p>") == []
