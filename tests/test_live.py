"""bert_annotated.live (Appendix J), the page's script and the build's extension, without a browser.

The browser half (the page's tokenizer, top-5 and attention maps against PyTorch) is tools/live_check.py,
run by `make book-check` on the built book.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bert_annotated.checkpoints import book_model_dir
from bert_annotated.live import (
    BROWSER_MODEL_NAME,
    browser_download_bytes,
    browser_manifest,
    export_browser_model,
    live_attention,
    live_fill_mask,
)
from bert_annotated.probing import attention_summary, fill_mask, load_book_model
from bert_annotated.tokenization import CJK_RANGES, SPECIAL_TOKENS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = (ROOT / "book" / "_static" / "live" / "bert-live.js").read_text(encoding="utf-8")


def load_tool(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def book_model():
    return load_book_model()


def test_export_writes_the_stored_half_precision_weights(tmp_path):
    manifest = export_browser_model(book_model_dir(), tmp_path)
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == sorted([f"{BROWSER_MODEL_NAME}.json", manifest["weights_file"], manifest["vocab_file"]])
    assert json.loads((tmp_path / f"{BROWSER_MODEL_NAME}.json").read_text()) == manifest
    assert sum(path.stat().st_size for path in tmp_path.iterdir()) == browser_download_bytes(book_model_dir())
    weights = (tmp_path / manifest["weights_file"]).read_bytes()
    assert len(weights) == manifest["weights_bytes"]
    _, tensors = browser_manifest(book_model_dir())
    for entry in manifest["tensors"]:
        tensor = tensors[entry["name"]]
        assert entry["offset"] % 4 == 0 and entry["dtype"] == "float16"
        data = weights[entry["offset"]:entry["offset"] + tensor.numel() * 2]
        assert torch.equal(torch.frombuffer(bytearray(data), dtype=torch.float16).view(tensor.shape), tensor)
    names = {entry["name"] for entry in manifest["tensors"]}
    assert "bert.embeddings.word_embeddings.weight" in names and "cls.predictions.bias" in names
    assert not any(name.startswith(("bert.pooler.", "cls.seq_relationship.")) for name in names)


def test_export_refuses_an_activation_the_script_does_not_compute(tmp_path):
    source = book_model_dir()
    for name in ("model.safetensors", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / name).symlink_to(source / name)
    config = json.loads((source / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="exact GELU only"):
        browser_manifest(tmp_path)


def test_fill_mask_widget_holds_the_python_predictions(book_model, monkeypatch):
    model, tokenizer = book_model
    monkeypatch.setenv("BERT_BOOK_LANG", "zh")
    text = "北京是中国的[MASK]都。<&>"
    widget = live_fill_mask(model, tokenizer, text)
    page = widget._repr_html_()
    for prediction in fill_mask(model, tokenizer, text)[0]:
        assert f'data-token="{prediction.token}"' in page and prediction.token in repr(widget)
    assert 'data-lang="zh"' in page and "&lt;&amp;&gt;" in page and "<&>" not in page  # escaped
    assert f'data-bytes="{browser_download_bytes(book_model_dir())}"' in page
    assert "<div class=\"bert-live-controls\" hidden>" in page  # no controls where the script does not run
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        live_fill_mask(model, tokenizer, "no blank")


def test_attention_widget_carries_the_summary_and_one_map(book_model):
    model, tokenizer = book_model
    pair = ("The river flows into the sea.", "It carries sand.")
    summary = attention_summary(model, tokenizer, [pair])
    widget = live_attention(model, tokenizer, *pair, summary, 1, layer=2, head=3)
    page = widget._repr_html_()
    carried = json.loads(re.search(r'data-summary="([^"]*)"', page).group(1).replace("&quot;", '"'))
    assert carried.keys() == summary.keys()
    assert all(torch.allclose(torch.tensor(carried[key]), summary[key], atol=1e-6) for key in summary)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode(*pair)["input_ids"])
    assert page.count("<td style=") == len(tokens) ** 2 and 'data-layer="2"' in page and 'data-head="3"' in page


def test_script_shares_the_tokenizer_constants_of_chapter_01():
    ranges = [tuple(int(number, 16) for number in pair)
              for pair in re.findall(r"\[0x([0-9A-F]+), 0x([0-9A-F]+)\]", SCRIPT.split("var CJK_RANGES = ")[1].split(";")[0])]
    assert ranges == CJK_RANGES
    special = json.loads(SCRIPT.split("var SPECIAL_TOKENS = ")[1].split(";")[0])
    assert special == SPECIAL_TOKENS
    assert set(re.findall(r"^    (en|zh): \{", SCRIPT, flags=re.M)) == {"en", "zh"}


def test_both_editions_of_the_script_have_every_message():
    def keys(language):
        block = SCRIPT.split(f"    {language}: {{")[1].split("\n    }")[0]
        return set(re.findall(r"^      (\w+):", block, flags=re.M))
    assert keys("en") == keys("zh") and {"load", "fileProtocol", "unsupported", "failed", "noMask"} <= keys("en")


def test_extension_adds_the_script_only_to_pages_with_a_widget():
    live_model = load_tool("live_model", ROOT / "book" / "_ext" / "live_model.py")
    added = []
    builder = SimpleNamespace(add_js_file=lambda name, **kw: added.append(name), add_css_file=lambda name: added.append(name))
    app = SimpleNamespace(builder=builder)
    live_model.add_live_script(app, "en/03_attention", "page.html", {"body": "<p>no widget</p>"}, None)
    assert added == []
    live_model.add_live_script(app, "en/09_using_bert", "page.html", {"body": '<div class="bert-live" data-x>'}, None)
    assert added == ["live/bert-live.css", "live/bert-live.js"]


def test_live_check_compares_tokens_order_and_probabilities():
    live_check = load_tool("live_check", ROOT / "tools" / "live_check.py")
    expected = [[SimpleNamespace(token="paris", probability=0.5), SimpleNamespace(token="lyon", probability=0.2)]]
    problems = []
    assert live_check.compare_predictions("t", [[("paris", 0.50002), ("lyon", 0.2)]], expected, problems) < 1e-4
    assert problems == []
    live_check.compare_predictions("t", [[("lyon", 0.5), ("paris", 0.2)]], expected, problems)
    assert "page ['lyon', 'paris'] != PyTorch ['paris', 'lyon']" in problems[0]
    problems = []
    live_check.compare_predictions("t", [[("paris", 0.51), ("lyon", 0.2)]], expected, problems)
    assert "differ from PyTorch's by 1.00e-02" in problems[0]
    problems = []
    live_check.compare_predictions("t", [], expected, problems)
    assert "0 masks" in problems[0]


def test_export_refuses_a_decoder_that_is_not_tied(tmp_path):
    from safetensors.torch import load_file, save_file
    source = book_model_dir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / name).symlink_to(source / name)
    tensors = load_file(str(source / "model.safetensors"))
    tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"].clone()
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert len(browser_manifest(tmp_path)[0]["tensors"]) == 74  # a tied copy is fine: left out, the script reuses it
    tensors["cls.predictions.decoder.weight"][0, 0] += 1
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="not tied to the word embeddings"):
        browser_manifest(tmp_path)


def test_a_sphinx_build_adds_the_script_to_the_widget_page_only_and_exports_the_model(tmp_path):
    pytest.importorskip("sphinx")
    from sphinx.application import Sphinx

    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
                                    f"extensions = ['live_model']\nhtml_static_path = [{str(ROOT / 'book' / '_static')!r}]\n"
                                    # what Jupyter Book does with every .js and .css under _static
                                    "html_js_files = ['bilingual.js', 'live/bert-live.js']\n"
                                    "html_css_files = ['live/bert-live.css']\n")
    (source / "index.md").write_text("Index\n=====\n\n.. toctree::\n\n   widget\n   plain\n")
    (source / "index.rst").write_text((source / "index.md").read_text())
    (source / "index.md").unlink()
    (source / "a_widget.rst").write_text('Widget\n======\n\n.. raw:: html\n\n   <div class="bert-live" data-widget="fill-mask"></div>\n')
    (source / "b_plain.rst").write_text("Plain\n=====\n\nNo widget here.\n")
    app = Sphinx(str(source), str(source), str(tmp_path / "html"), str(tmp_path / "doctrees"), "html",
                 status=None, warning=None, freshenv=True)
    app.build()
    # the page written after the widget's must not inherit its script
    widget, plain = (tmp_path / "html" / "a_widget.html").read_text(), (tmp_path / "html" / "b_plain.html").read_text()
    assert widget.count("_static/live/bert-live.js") == 1 and widget.count("_static/live/bert-live.css") == 1
    assert 'defer="defer"' in widget and "bert-live" not in plain and "bilingual.js" in plain
    manifest = json.loads((tmp_path / "html" / "_static" / "live" / f"{BROWSER_MODEL_NAME}.json").read_text())
    assert (tmp_path / "html" / "_static" / "live" / manifest["weights_file"]).stat().st_size == manifest["weights_bytes"]
