"""The rendered book, checked without a browser: notebooks, language twins, glossary, citations.

`make book-check` loads every built page in headless Chromium; these tests cover what can be
decided from the sources alone, quickly.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
yaml = pytest.importorskip("yaml")


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bilingual = load("bilingual", BOOK / "_ext" / "bilingual.py")
make_notebooks = load("make_notebooks", ROOT / "tools" / "make_notebooks.py")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
BIB_KEY = re.compile(r"^@\w+\{([^,\s]+),", re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")


def toc_files() -> list[str]:
    return [chapter["file"] for part in TOC["parts"] for chapter in part["chapters"]]


def toc_pages(language: str) -> list[str]:
    return [name for name in toc_files() if name.startswith(language + "/")]


def bib_keys() -> set[str]:
    return set(BIB_KEY.findall((BOOK / "references.bib").read_text(encoding="utf-8")))


def citations(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [key.strip() for group in CITE.findall(text) for key in group.split(",")]


# ------------------------------------------------------------------ configuration
def test_config_has_bilingual_title_bibliography_and_launch_buttons():
    assert "BERT" in CONFIG["title"] and CJK.search(CONFIG["title"])
    assert CONFIG["bibtex_bibfiles"] == ["references.bib"] and (BOOK / "references.bib").exists()
    assert CONFIG["launch_buttons"]["colab_url"] and CONFIG["launch_buttons"]["binderhub_url"]
    sphinx = CONFIG["sphinx"]["config"]
    assert sphinx["html_theme"] == "sphinx_book_theme"
    assert sphinx["numfig"] is True and sphinx["math_number_all"] is True
    assert "sphinx-mathjax-offline" in CONFIG["sphinx"]["extra_extensions"]  # math renders offline
    assert (ROOT / CONFIG["sphinx"]["local_extensions"]["bilingual"] / "bilingual.py").exists()
    assert (BOOK / "_templates" / "language-switch.html").exists()


def test_repository_url_is_written_in_one_place():
    url = CONFIG["repository"]["url"]
    assert url.startswith("https://github.com/")
    mentions = [path.relative_to(ROOT).as_posix()
                for folder in ("book/_ext", "book/_templates", "tools", "Makefile", ".ci")
                for path in ([ROOT / folder] if (ROOT / folder).is_file() else (ROOT / folder).rglob("*"))
                if path.is_file() and url in path.read_text(encoding="utf-8", errors="ignore")]
    assert mentions == [], f"the repository URL is hard-coded in {mentions}; read it from _config.yml"


# ------------------------------------------------------------------ language twins
@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_page_of_a_language_part_has_a_twin(language):
    other = "zh" if language == "en" else "en"
    pages = toc_pages(language)
    assert pages, f"no {language} pages in _toc.yml"
    for page in pages:
        twin = bilingual.twin_page(page)
        assert twin == other + page[len(language):]
        assert twin in toc_files(), f"{page} has no twin {twin} in _toc.yml: the language switch would be dead"
        assert (BOOK / f"{twin}.md").exists()


def test_every_english_chapter_is_in_the_toc_with_its_twin_or_in_neither():
    listed = set(toc_files())
    for chapter in sorted((BOOK / "en").glob("[0-9][0-9]_*.md")) + sorted((BOOK / "en").glob("appendix_*.md")):
        english, chinese = f"en/{chapter.stem}", f"zh/{chapter.stem}"
        assert (english in listed) == (chinese in listed), f"_toc.yml lists only one of {english}, {chinese}"


def test_twin_and_language_helpers():
    assert bilingual.twin_page("en/03_attention") == "zh/03_attention"
    assert bilingual.twin_page("zh/glossary") == "en/glossary"
    assert bilingual.twin_page("index") is None and bilingual.page_language("index") is None
    assert bilingual.page_language("zh/03_attention") == "zh"
    assert bilingual.notebook_path("zh/03_attention") == "notebooks/zh/03_attention.ipynb"


def test_landing_page_lets_the_reader_pick_a_language():
    index = (BOOK / "index.md").read_text(encoding="utf-8")
    assert "Choose your language" in index and "选择语言" in index
    assert ":link: en/00_preface" in index and ":link: zh/00_preface" in index


# ------------------------------------------------------------------ glossary
GLOSSARY_TERMS = {
    "token": "词元", "tokenization": "分词", "wordpiece": "WordPiece", "vocabulary": "词表",
    "embedding": "嵌入", "segment": "句段", "position embedding": "位置嵌入", "attention": "注意力",
    "head": "头", "mask": "掩码", "padding": "填充", "layer normalization": "层归一化",
    "residual": "残差", "feed-forward": "前馈", "pooler": "池化层", "pre-training": "预训练",
    "fine-tuning": "微调", "masked language model": "掩码语言模型", "next-sentence prediction": "下一句预测",
    "logits": "logits", "loss": "损失", "learning rate": "学习率", "warm-up": "预热",
    "gradient accumulation": "梯度累积", "mixed precision": "混合精度", "checkpoint": "检查点",
}


def glossary_rows(language: str) -> list[tuple[str, str]]:
    """(English, 中文) for every row of a glossary table."""
    rows = []
    for line in (BOOK / language / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and not set(cells[0]) <= set("-"):
            rows.append((cells[0], cells[1]) if language == "en" else (cells[1], cells[0]))
    return rows[1:]  # without the header row


def test_glossaries_map_every_term_in_both_languages():
    english, chinese = glossary_rows("en"), glossary_rows("zh")
    assert english == chinese, "the en and zh glossaries must list the same pairs in the same order"
    for term, translation in GLOSSARY_TERMS.items():
        matches = [zh for en, zh in english if term in en.lower()]
        assert matches, f"glossary has no entry for '{term}'"
        accepted = translation if isinstance(translation, tuple) else (translation,)
        assert any(word in zh for zh in matches for word in accepted), f"'{term}' is not translated as {translation}: {matches}"
    for _, zh in english:
        assert zh, "an empty Chinese term"
    assert {"en/glossary", "zh/glossary"} <= set(toc_files())


# ------------------------------------------------------------------ citations
def test_bibliography_holds_the_works_the_book_relies_on():
    keys = bib_keys()
    for key in ["devlin2019bert", "vaswani2017attention", "wu2016google", "schuster2012japanese",
                "hendrycks2016gelu", "ba2016layer", "peters2018deep", "radford2018improving",
                "xiong2020layer", "loshchilov2019decoupled", "micikevicius2018mixed", "liu2019roberta",
                "wang2018glue", "rajpurkar2016squad", "williams2018broad"]:
        assert key in keys, f"references.bib lacks {key}"
    text = (BOOK / "references.bib").read_text(encoding="utf-8")
    assert len(BIB_KEY.findall(text)) == len(keys), "duplicate keys in references.bib"


def test_references_pages_one_per_language():
    english = (BOOK / "en" / "references.md").read_text(encoding="utf-8")
    chinese = (BOOK / "zh" / "references.md").read_text(encoding="utf-8")
    assert "{bibliography}" in english and ":keyprefix:" not in english
    assert "{bibliography}" in chinese and ":keyprefix: zh-" in chinese and "参考文献" in chinese
    assert {"en/references", "zh/references"} <= set(toc_files())


@pytest.mark.parametrize("path", sorted(BOOK.glob("*/*.md")) + [BOOK / "index.md"], ids=lambda p: p.relative_to(BOOK).as_posix())
def test_every_cited_key_exists_and_uses_its_languages_prefix(path):
    keys = bib_keys()
    zh = path.parent.name == "zh"
    for key in citations(path):
        if zh:
            assert key.startswith("zh-"), f"{path.name}: Chinese pages cite {{cite}}`zh-{key}`, not `{key}`"
            key = key[len("zh-"):]
        else:
            assert not key.startswith("zh-"), f"{path.name}: the zh- prefix is for Chinese pages only"
        assert key in keys, f"{path.relative_to(ROOT)} cites '{key}', which is not in book/references.bib"


# ------------------------------------------------------------------ notebooks
def test_committed_notebooks_are_in_sync_with_the_chapters():
    result = subprocess.run([sys.executable, "tools/make_notebooks.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "notebooks/ out of date with the book; run `make notebooks`:\n" + result.stdout + result.stderr


DEMO_HEADER = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
               "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n")


def demo_notebook(tmp_path, language: str, body: str, bib: str = "") -> dict:
    """Convert a one-chapter demo book with make_notebooks.build and return the notebook as JSON."""
    chapter = tmp_path / "book" / language / "01_demo.md"
    chapter.parent.mkdir(parents=True, exist_ok=True)
    chapter.write_text(DEMO_HEADER + body, encoding="utf-8")
    if bib:
        (tmp_path / "book" / "references.bib").write_text(bib, encoding="utf-8")
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/example/book\n  branch: trunk\n", encoding="utf-8")
    outputs = make_notebooks.build(tmp_path / "book", tmp_path / "notebooks", config, tmp_path)
    assert outputs == make_notebooks.build(tmp_path / "book", tmp_path / "notebooks", config, tmp_path)  # deterministic
    return json.loads(outputs[Path(language) / "01_demo.ipynb"])


def test_generated_notebook_installs_the_package_only_on_colab(tmp_path, monkeypatch):
    notebook = demo_notebook(tmp_path, "zh", "# 01 · 演示\n\n```{code-cell} ipython3\n#| default_exp demo\n```\n\n"
                             "```{code-cell} ipython3\n#| export\nx = 1 + 1\nassert x == 2\n```\n")
    first = notebook["cells"][0]
    assert first["cell_type"] == "code", "the install cell comes first"
    source = "".join(first["source"])
    assert '"google.colab" in sys.modules' in source and "git+https://github.com/example/book.git@trunk" in source
    monkeypatch.setenv("BERT_BOOK_LANG", "en")  # recorded, so the value the cell sets is undone after the test
    monkeypatch.delenv("BERT_BOOK_LANG")
    exec(compile(source, "install-cell", "exec"), {})  # not on Colab: installs nothing, raises nothing
    assert __import__("os").environ["BERT_BOOK_LANG"] == "zh"  # tr() picks the Chinese labels on Colab
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code[1:] == ["x = 1 + 1\nassert x == 2"], "the default_exp cell is dropped, the #| export line removed"
    assert all(cell["outputs"] == [] for cell in notebook["cells"] if cell["cell_type"] == "code")


DEMO_BIB = """@inproceedings{devlin2019bert,
  author = {Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina},
  title = {{BERT}: Pre-training of Deep Bidirectional Transformers}, booktitle = {NAACL}, year = {2019},
  doi = {10.18653/v1/N19-1423}}
@techreport{ba2016layer, author = {Ba, Jimmy Lei and Kiros, Jamie Ryan}, title = {Layer Normalization},
  institution = {University of Toronto}, number = {arXiv:1607.06450}, year = {2016}}
"""
DEMO_MYST = """# 01 · Demo

(sec-idea)=
## The idea

BERT {cite}`devlin2019bert` normalises {cite}`ba2016layer,devlin2019bert`; {cite:t}`ba2016layer` explain why.
See {ref}`sec-idea`, {ref}`the idea <sec-idea>`, {doc}`01_demo`, the {term}`token <Token>`, {math}`x^2`, {index}`BERT`
and [the idea](#sec-idea). Code `{cite}` stays code.

:::{admonition} What you will learn
:class: tip

- one thing;
- another, citing {cite}`devlin2019bert`.
:::

```{note}
A note with $x$.
```

```{math}
:label: eq-one
y = x
```

$$
z = 1
$$ (eq-two)

```{glossary}
token
  One piece of text.
```

```{figure} ../figures/plot.png
:name: fig-plot
A plot.
```

% a comment that MyST hides

```python
print("{cite}`not a role in a code block`")
```
"""


def test_notebook_markdown_reads_as_plain_jupyter_markdown(tmp_path):
    notebook = demo_notebook(tmp_path, "en", DEMO_MYST, DEMO_BIB)
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "markdown"]
    text = "\n".join("".join(cell["source"]) for cell in cells)
    assert make_notebooks.myst_leftovers(text) == []
    doi = "https://doi.org/10.18653/v1/N19-1423"
    assert f"BERT ([Devlin et al., 2019]({doi}))" in text
    assert f"([Ba and Kiros, 2016](https://arxiv.org/abs/1607.06450); [Devlin et al., 2019]({doi}))" in text
    assert "[Ba and Kiros (2016)](https://arxiv.org/abs/1607.06450) explain why" in text
    assert "See The idea, the idea, [01 · Demo](01_demo.ipynb), the token, $x^2$, BERT\nand the idea." in text
    assert "Code `{cite}` stays code." in text and 'print("{cite}`not a role in a code block`")' in text
    assert "> **What you will learn**\n>\n> - one thing;\n> - another, citing ([Devlin et al., 2019]" in text
    assert "> **Note**\n>\n> A note with $x$." in text
    assert "$$\ny = x\n$$" in text and "$$\nz = 1\n$$" in text and "(eq-two)" not in text
    assert "- **token**: One piece of text." in text
    assert "![A plot.](https://raw.githubusercontent.com/example/book/trunk/book/figures/plot.png)" in text
    assert "comment" not in text and "(sec-idea)=" not in text
    references = "".join(cells[-1]["source"])
    assert references.startswith("## References\n\n- Jacob Devlin, Ming-Wei Chang, Kenton Lee and Kristina Toutanova (2019).")
    assert references.index("Devlin") < references.index("Jimmy Lei Ba"), "listed in order of first citation"


def test_chinese_notebook_cites_in_chinese_and_unknown_keys_fail(tmp_path):
    notebook = demo_notebook(tmp_path, "zh", "# 01 · 演示\n\nBERT {cite}`zh-devlin2019bert` 和 {cite:t}`zh-ba2016layer`。\n", DEMO_BIB)
    text = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    assert "[Devlin 等, 2019](" in text and "[Ba 和 Kiros (2016)](" in text and "## 参考文献" in text
    with pytest.raises(make_notebooks.NotebookError, match="nosuchkey2020"):
        demo_notebook(tmp_path / "other", "en", "# 01 · Demo\n\nSee {cite}`nosuchkey2020`.\n", DEMO_BIB)


def test_leftover_detector_finds_myst_outside_code():
    found = make_notebooks.myst_leftovers(
        "A {cite}`x` role.\n\n:::{note}\nbox\n:::\n\n(label)=\n# H\n\n```{admonition} T\n```\n\n`{ref}` in code")
    kinds = " ".join(found)
    assert "MyST role" in kinds and "MyST directive" in kinds and "MyST target" in kinds and "::: fence" in kinds
    assert make_notebooks.myst_leftovers("Plain `{cite}` and\n\n```\n{cite}`x`\n:::{note}\n```\n") == []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*/*.ipynb")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_committed_notebooks_render_without_myst_syntax(path):
    """Render every markdown cell as Jupyter would (CommonMark) and look for MyST source in the result."""
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark").enable("table")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["cells"][0]["cell_type"] == "code" and "google.colab" in "".join(notebook["cells"][0]["source"])
    language = path.parent.name
    assert f'os.environ["BERT_BOOK_LANG"] = "{language}"' in "".join(notebook["cells"][0]["source"])
    for number, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            assert not re.search(r"^#\|", source, re.M), f"{path.name} cell {number}: export marker left"
            continue
        html = renderer.render(source)
        visible = re.sub(r"<pre><code(?! class=\"language-\{).*?</code></pre>", "", html, flags=re.S)
        for pattern, what in [(r"\{[\w:+.-]+\}<code>", "a role"), (r'class="language-\{', "a directive"),
                              (r"^<p>:::", "a ::: fence"), (r"\([\w:.-]+\)=", "a target"), (r"<p>:[\w-]+:", "an option")]:
            match = re.search(pattern, visible, re.M)
            assert match is None, f"{path.name} cell {number}: {what} shows as source text: {visible[max(0, match.start() - 60):match.end() + 60]!r}"


def test_notebooks_cover_every_chapter_of_both_languages():
    for language in ("en", "zh"):
        chapters = {p.stem for pattern in ("[0-9][0-9]_*.md", "appendix_*.md") for p in (BOOK / language).glob(pattern)}
        notebooks = {p.stem for p in (ROOT / "notebooks" / language).glob("*.ipynb")}
        assert chapters == notebooks


def test_notebooks_are_never_collected_by_pytest():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["norecursedirs"]


# ------------------------------------------------------------------ figures
def test_matplotlibrc_is_identical_in_both_languages_and_prefers_a_cjk_font():
    english = (BOOK / "en" / "matplotlibrc").read_text(encoding="utf-8")
    assert english == (BOOK / "zh" / "matplotlibrc").read_text(encoding="utf-8")
    families = re.search(r"^font\.sans-serif:\s*(.+)$", english, re.M).group(1).split(",")
    assert families[0].strip().startswith("Noto Sans CJK") and "DejaVu Sans" in [f.strip() for f in families]


def test_missing_glyph_warnings_are_detected():
    warning = ("/usr/lib/python3/dist-packages/IPython/core/pylabtools.py:170: UserWarning: Glyph 27880 "
               "(\\N{CJK UNIFIED IDEOGRAPH-6CE8}) missing from font(s) DejaVu Sans.\n  fig.canvas.print_figure(bytes_io, **kw)\n")
    notebook = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "Glyph 1 missing from font(s) is only printed\n"},
        {"output_type": "stream", "name": "stderr", "text": [warning]},
    ]}]}
    found = bilingual.missing_glyphs(notebook)
    assert len(found) == 1 and "27880" in found[0]
    assert bilingual.missing_glyphs({"cells": [{"cell_type": "markdown"}]}) == []


def test_chapters_open_with_goals_and_end_with_summary_and_exercises():
    finished = ["00_preface", "01_tokenization", "02_embeddings", "03_attention", "04_encoder", "05_masked_lm",
                "06_next_sentence", "07_pretraining_data", "08_pretraining", "09_using_bert", "10_fine_tuning", "11_question_answering",
                "12_after_bert", "appendix_a_training_runs", "appendix_b_command_line", "appendix_c_runtime",
                "appendix_d_fast_vocabulary", "appendix_e_checkpoint_folders", "appendix_f_corpora",
                "appendix_g_classification_data", "appendix_h_qa_data", "appendix_i_diagrams", "appendix_j_live_model"]
    headings = {"en": ("What you will learn", "## Summary", "## Exercises"), "zh": ("本章你将学到", "## 小结", "## 练习")}
    for language, (goals, summary, exercises) in headings.items():
        for name in finished:
            text = (BOOK / language / f"{name}.md").read_text(encoding="utf-8")
            assert f"{{admonition}} {goals}" in text, f"{language}/{name}: no '{goals}' box"
            assert text.index(goals) < text.index("\n## "), f"{language}/{name}: '{goals}' must open the chapter"
            assert summary in text and exercises in text, f"{language}/{name}: needs {summary} and {exercises}"


def test_wrapped_chinese_lines_lose_their_break_but_latin_words_keep_their_space():
    text = "除此之外什么都不变。\n这正是第 02 章\n要在第一层\n之前加上位置嵌入，\nBERT 也一样；\nthe English line\nstays."
    assert bilingual.join_chinese_lines(text) == (
        "除此之外什么都不变。这正是第 02 章要在第一层之前加上位置嵌入，BERT 也一样；the English line\nstays.")


# ------------------------------------------------------------------ the reader's routes: Jupyter, Binder, the build
def test_notebook_extra_installs_jupyterlab_and_jupytext():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", requirement)[0].lower() for requirement in extras["notebook"]}
    assert {"jupyterlab", "jupytext", "ipykernel"} <= names


def test_notebooks_beside_chapters_are_ignored_by_git_and_by_the_book():
    from sphinx.util.matching import Matcher

    excluded = Matcher(CONFIG["exclude_patterns"])
    assert excluded("en/01_tokenization.ipynb") and excluded("zh/seed_repo.ipynb")
    assert not excluded("en/01_tokenization.md") and not excluded("index.md")
    git = subprocess.run(["git", "check-ignore", "-q", "book/en/01_tokenization.ipynb"], cwd=ROOT, capture_output=True)
    if git.returncode == 128:
        pytest.skip("not a git checkout")
    assert git.returncode == 0, ".gitignore must ignore book/**/*.ipynb"
    kept = subprocess.run(["git", "check-ignore", "-q", "notebooks/en/01_tokenization.ipynb"], cwd=ROOT)
    assert kept.returncode == 1, "the generated notebooks/ are committed, not ignored"


def makefile_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_book_is_the_plain_build_command_and_ci_runs_it_strictly():
    assert makefile_recipe("book") == ["jupyter-book build book $(BOOK_FLAGS)"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'make book BOOK_FLAGS="-W --keep-going"' in ci
    for path in ("Makefile", ".ci/run"):
        assert "PYTHONWARNINGS" not in (ROOT / path).read_text(encoding="utf-8"), f"{path} hides warnings"


def test_make_runs_pytorch_with_a_thread_count_that_does_not_oversubscribe():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "export OMP_NUM_THREADS := $(THREADS)" in makefile and "cpu_thread_count" in makefile
    assert makefile_recipe("test")[0].startswith("OMP_NUM_THREADS=$(TEST_THREADS) ")
    result = subprocess.run(["make", "-s", "-n", "test", "PYTHON=" + sys.executable, "JOBS=2"], cwd=ROOT,
                            capture_output=True, text=True, env={"PATH": __import__("os").environ["PATH"], "OMP_NUM_THREADS": "6"})
    if result.returncode != 0:
        pytest.skip("make is not available")
    assert "OMP_NUM_THREADS=3 " in result.stdout  # 6 threads shared by 2 pytest workers


def test_kernel_environment_silences_only_the_tqdm_warning(monkeypatch):
    requested = CONFIG["sphinx"]["config"]["kernel_environment"]
    assert requested == {"PYTHONWARNINGS": "ignore:IProgress not found"}
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    import bert_annotated.runtime as runtime
    from bert_annotated.runtime import cpu_thread_count

    monkeypatch.setattr(runtime, "busy_cpu_count", lambda: 0)  # the load average may change between two calls

    environment = bilingual.kernel_environment(requested, {})
    assert environment == {"PYTHONWARNINGS": "ignore:IProgress not found", "OMP_NUM_THREADS": str(cpu_thread_count())}
    mine = bilingual.kernel_environment(requested, {"PYTHONWARNINGS": "error", "OMP_NUM_THREADS": "1"})
    assert mine == {"PYTHONWARNINGS": "error,ignore:IProgress not found"}  # the user's settings stay in force
    script = ("import warnings\nwarnings.warn('IProgress not found. Please update jupyter and ipywidgets.')\n"
              "warnings.warn('a real problem')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**__import__("os").environ, **environment})
    assert "IProgress" not in result.stderr and "a real problem" in result.stderr


def test_the_build_asks_for_encrypted_kernel_connections(monkeypatch):
    """ipykernel warns once per chapter when its connection is plain TCP; the build provisions CurveZMQ keys."""
    nbclient = pytest.importorskip("nbclient")
    zmq = pytest.importorskip("zmq")
    from traitlets.config import Config

    monkeypatch.setattr(nbclient.NotebookClient, "create_kernel_manager", nbclient.NotebookClient.create_kernel_manager)
    notebook = pytest.importorskip("nbformat").v4.new_notebook()
    default = nbclient.NotebookClient(notebook).create_kernel_manager()
    if not default.has_trait("transport_encryption") or not zmq.has("curve"):
        pytest.skip("jupyter_client < 8.9 or pyzmq without CurveZMQ: nothing to ask for")
    assert default.transport_encryption == "disabled"
    bilingual.encrypt_kernel_connections(None, None)
    bilingual.encrypt_kernel_connections(None, None)  # a second build in the same process wraps nothing twice
    assert nbclient.NotebookClient(notebook).create_kernel_manager().transport_encryption == "auto"
    config = Config()
    config.KernelManager.transport_encryption = "disabled"  # a setting of the user's stays
    assert nbclient.NotebookClient(notebook, config=config).create_kernel_manager().transport_encryption == "disabled"


def test_binder_installs_the_cpu_build_of_pytorch():
    requirements = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    assert re.search(r"^torch\b", requirements, re.M)
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111 and "pip install --no-cache-dir -e ." in post_build.read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in (ROOT / "binder" / "apt.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------ site chrome
def test_chinese_pages_get_the_themes_labels_in_chinese():
    pytest.importorskip("pydata_sphinx_theme")
    pytest.importorskip("sphinx_book_theme")
    catalogs = bilingual.theme_catalogs("zh_CN")
    for english, chinese in {"previous": "上一页", "next": "下一页", "Search": "搜索", "Contents": "目录",
                             "Print to PDF": "打印为 PDF", "Color mode": "颜色模式"}.items():
        assert catalogs["sphinx"].gettext(english) == chinese
    assert catalogs["booktheme"].gettext("Contents") == "目录"
    assert catalogs["booktheme"].gettext("Search this book...") == "搜索本书……"
    page = '<button title="Toggle primary sidebar" aria-label="Main" data-bs-title="Color mode">Toggle primary sidebar</button>'
    assert bilingual.translate_attribute_labels(page, bilingual.EXTRA_ZH_LABELS) == (
        '<button title="显示或隐藏目录栏" aria-label="全书目录" data-bs-title="颜色模式">Toggle primary sidebar</button>')


def test_folded_code_cells_have_chinese_toggles_on_chinese_pages():
    from docutils import nodes

    def page():
        doctree = nodes.document(None, None)
        toggle = nodes.container(prompt_show="Show code cell source", prompt_hide="Hide code cell source")
        doctree += toggle
        return doctree, toggle

    doctree, toggle = page()
    bilingual.translate_cell_toggles(None, doctree, "zh/03_attention")
    assert (toggle["prompt_show"], toggle["prompt_hide"]) == ("显示代码", "隐藏代码")
    doctree, toggle = page()
    bilingual.translate_cell_toggles(None, doctree, "en/03_attention")
    assert toggle["prompt_show"] == "Show code cell source"
    assert bilingual.EXTRA_ZH_LABELS["Toggle hidden content"] == "显示或隐藏代码"  # the toggle's aria-label
    assert (BOOK / "_static" / "bilingual.js").exists()  # the article header's sidebar buttons


class _Relations:
    def __init__(self, relations):
        self.env = type("Env", (), {"collect_relations": lambda env: relations})()


def test_previous_and_next_stay_within_a_language():
    app = _Relations({"en/references": ["index", "en/glossary", "zh/00_preface"],
                      "zh/00_preface": ["index", "en/references", "zh/01_tokenization"],
                      "index": [None, None, "en/00_preface"]})
    for page, kept, dropped in [("en/references", "prev", "next"), ("zh/00_preface", "next", "prev")]:
        context = {"prev": {"link": "p.html"}, "next": {"link": "n.html"}}
        bilingual.keep_prev_next_in_language(app, page, "page.html", context, None)
        assert context[dropped] is None and context[kept] is not None, page
    context = {"prev": None, "next": {"link": "en/00_preface.html"}}
    bilingual.keep_prev_next_in_language(app, "index", "page.html", context, None)
    assert context["next"] is not None  # the landing page leads into the English part


def test_one_search_box():
    sidebar = CONFIG["sphinx"]["config"]["html_sidebars"]["**"]
    assert not any("search" in item for item in sidebar), "the header's search button is the only search box"


def test_launch_buttons_open_the_generated_notebook_even_with_an_ipynb_beside_the_chapter():
    class App:
        config = type("Config", (), {"html_theme_options": {"path_to_docs": "book",
                                                              "launch_buttons": {"colab_url": "https://colab"}}})()

    for source in ("book/en/03_attention.md", "book/en/03_attention.ipynb"):  # the theme prefers an .ipynb twin
        url = f"https://mybinder.org/v2/gh/o/r/main?urlpath=tree/{source}"
        context = {"header_buttons": [{"label": "launch-buttons", "buttons": [{"text": "Binder", "url": url}]}]}
        bilingual.point_launch_buttons_at_notebooks(App(), "en/03_attention", "page.html", context, None)
        assert context["header_buttons"][0]["buttons"][0]["url"].endswith("urlpath=tree/notebooks/en/03_attention.ipynb")


def test_landing_page_chapter_table_comes_from_the_toc():
    index = (BOOK / "index.md").read_text(encoding="utf-8")
    assert bilingual.CHAPTER_TABLE_MARKER in index and "| 01 |" not in index  # no hand-written table to drift
    table = bilingual.chapter_table(BOOK)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    english = [e["file"] for part in toc["parts"] for e in part["chapters"] if e["file"].startswith("en/")]
    assert len(table.splitlines()) == 2 + len(english)
    for page in english:
        assert f"]({page}.md) | [" in table and f"]({bilingual.twin_page(page)}.md) |" in table
    assert "| 11 | [Question answering](en/11_question_answering.md) |" in table
    assert "| A | [Training runs that survive](en/appendix_a_training_runs.md) | [经得起中断的训练]" in table
    assert bilingual.page_title(BOOK / "zh" / "04_encoder.md") == ("04", "编码器")


def test_notebooks_show_a_literalinclude_as_the_included_code():
    context = make_notebooks.Context("en", {})
    body = ":language: javascript\n:start-after: book-excerpt-start\n:end-before: book-excerpt-end"
    rendered = make_notebooks.render_directive("literalinclude", "../_static/live/bert-live.js", body, context)
    script = (BOOK / "_static" / "live" / "bert-live.js").read_text(encoding="utf-8")
    assert rendered.startswith("```javascript\n  /* The encoder on one sequence") and rendered.endswith("\n  };\n```")
    assert "Model.prototype.mlmProbabilities" in rendered and "book-excerpt" not in rendered
    assert rendered[len("```javascript\n"):-len("\n```")] in script
