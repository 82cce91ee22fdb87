"""Check chapter 09's live widgets in headless Chromium against PyTorch (Appendix J).

`make book-check` runs this after tools/book_check.py. It serves `_build/html` on localhost, opens
chapter 09 of both editions and checks that

* the page downloads nothing of the model until the reader presses a button, and then exactly the
  bytes that the button announced;
* the page's tokenizer gives chapter 01's ids (BertTokenizer.encode) on texts chosen to be hard:
  accents, Chinese, unknown characters, controls, a word too long for WordPiece, [MASK] inside a word;
* for each [MASK] of several sentences, typed into the box, the page's top 5 are PyTorch's top 5 of the
  same model, in the same order, with probabilities within PROBABILITY_TOLERANCE;
* the attention map of every layer and head equals PyTorch's within ATTENTION_TOLERANCE, and the four
  per-head averages the page shows are chapter 09's attention_summary of the same pair;
* a text without [MASK] gets a one-line message; opened from file://, or with JavaScript off, the page
  keeps the outputs computed when the book was built and says why in one line;
* no console error or uncaught exception.

It writes the measurements (download size, load time, largest differences) to _build/live-check.json.

Usage:  python tools/live_check.py [--site _build/html] [--output _build/live-check.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_check import CHROMIUM_ARGS, serve  # noqa: E402  (tools/ is not a package)

PROBABILITY_TOLERANCE = 1e-4
ATTENTION_TOLERANCE = 1e-4
LOAD_TIMEOUT_MS = 180_000
TOKENIZER_TEXTS = [
    "Hello, world!", "Café déjà vu, naïve résumé.", "北京是中国的首都。", "中文English混合123，还有標點！",
    "unknown ☃ characters 𝔘 and 🤗", "tabs\tand\nnewlines\r\x00nul\x07bell", "a" * 101 + " tail",
    "super[MASK]word", "The  [MASK]  is [UNK] [CLS] [SEP] [PAD]", "İstanbul ΣΟΦΟΣ straße Ǆemal",
    "line\u2028separator\u2029paragraph\xa0nbsp\u3000ideographic space", "don't stop, e.g. U.S.A.",
    "¿Qué? ¡Sí!", "\u200bzero\u200dwidth\ufeffbom", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ", "",
]
FILL_TEXTS = {
    "en": ["He was born in 1950 and [MASK] in 2010.", "The capital of France is [MASK].",
           "The [MASK] is the largest [MASK] in the solar system.", "She [MASK] a gold medal at the Olympic Games."],
    "zh": ["北京是中国的[MASK]都。", "中华人民共和国成立于1949[MASK]。", "他在[MASK]学读书。", "这本书很[MASK]看。"],
}
PAIRS = {"en": ("The river flows into the sea.", "It carries sand from the mountains."),
         "zh": ("河水流入大海。", "河水带来了山里的泥沙。")}
NO_MASK = {"en": "No [MASK] in the text", "zh": "文本中没有 [MASK]"}
LIVE_FILES = ("bert-mini-bilingual.json", "bert-mini-bilingual.bin", "bert-mini-bilingual-vocab.txt")

ALL_ATTENTION = """async ([a, b]) => {
  const live = await BertLive.load();
  const encoded = live.tokenizer.encode(a, b);
  return live.model.encode(encoded.inputIds, encoded.tokenTypeIds).attentions.map(l => l.map(h => Array.from(h)));
}"""
TOKEN_IDS = """async (texts) => {
  const live = await BertLive.load();
  return texts.map(t => live.tokenizer.encode(t).inputIds);
}"""


def page_predictions(widget) -> list[list[tuple[str, float]]]:
    """The live table of a fill-mask widget: per [MASK], (token, probability) in rank order."""
    rows = widget.locator(".bert-live-live tbody tr")
    return [[(cell.get_attribute("data-token"), float(cell.get_attribute("data-probability")))
             for cell in rows.nth(index).locator("td").all()] for index in range(rows.count())]


def compare_predictions(text: str, page: list, expected: list, problems: list) -> float:
    """Same tokens in the same order for every [MASK]; returns the largest |probability difference|."""
    largest = 0.0
    if len(page) != len(expected):
        problems.append(f"{text!r}: the page shows {len(page)} masks, PyTorch finds {len(expected)}")
        return largest
    for index, (ours, theirs) in enumerate(zip(page, expected)):
        if [token for token, _ in ours] != [p.token for p in theirs]:
            problems.append(f"{text!r} mask {index + 1}: page {[t for t, _ in ours]} != PyTorch {[p.token for p in theirs]}")
        differences = [abs(probability - p.probability) for (_, probability), p in zip(ours, theirs)]
        largest = max([largest, *differences])
    if largest > PROBABILITY_TOLERANCE:
        problems.append(f"{text!r}: probabilities differ from PyTorch's by {largest:.2e} > {PROBABILITY_TOLERANCE}")
    return largest


def run_widget(widget, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    """Press the widget's button and wait until the page has answered (data-runs goes up)."""
    runs = int(widget.get_attribute("data-runs") or 0)
    widget.locator(".bert-live-button").click()
    widget.page.wait_for_function(
        "([root, runs]) => Number(root.getAttribute('data-runs') || 0) > runs || root.dataset.state === 'failed'",
        arg=[widget.element_handle(), runs], timeout=timeout_ms)


def check_edition(context, base: str, language: str, model, tokenizer, report: dict) -> list[str]:
    import torch

    from bert_annotated.probing import attention_summary, fill_mask

    problems: list[str] = []
    page = context.new_page()
    errors: list[str] = []
    # (Chromium's own request for /favicon.ico, which the book does not have, is not the page's error)
    page.on("console", lambda message: errors.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(f"HTTP {response.status} for {response.url}")
            if response.status >= 400 else None)
    downloads: dict[str, int] = {}
    page.on("requestfinished", lambda request: downloads.__setitem__(
        request.url.rsplit("/", 1)[-1], request.sizes()["responseBodySize"]) if "/_static/live/bert-mini" in request.url else None)
    page.goto(f"{base}{language}/09_using_bert.html", wait_until="load")
    fill = page.locator('.bert-live[data-widget="fill-mask"]')
    attention = page.locator('.bert-live[data-widget="attention"]')
    if fill.count() != 1 or attention.count() != 1:
        return [f"{language}: expected one fill-mask and one attention widget, found {fill.count()} and {attention.count()}"]
    page.wait_for_function("root => root.dataset.state === 'ready'", arg=fill.element_handle(), timeout=30_000)
    if downloads:
        problems.append(f"{language}: the page downloaded {sorted(downloads)} before the reader asked")

    started = time.monotonic()
    run_widget(fill)
    report["load_seconds_wall"][language] = round(time.monotonic() - started, 2)
    report["load_seconds_page"][language] = float(fill.get_attribute("data-load-seconds") or "nan")
    announced = int(fill.get_attribute("data-bytes"))
    report["download_bytes"][language] = sum(downloads.values())
    if sorted(downloads) != sorted(LIVE_FILES) or sum(downloads.values()) != announced:
        problems.append(f"{language}: downloaded {downloads}, the button announced {announced} bytes")
    if fill.get_attribute("data-state") != "live":
        return problems + [f"{language}: the model did not load: {fill.locator('.bert-live-status').inner_text()}"]
    if not fill.locator(".bert-live-static").is_hidden():
        problems.append(f"{language}: the built outputs are still shown beside the live ones")

    texts = [fill.get_attribute("data-text"), *FILL_TEXTS[language]]
    largest = 0.0
    for index, text in enumerate(texts):
        if index:
            fill.locator("textarea").fill(text)
            run_widget(fill)
        largest = max(largest, compare_predictions(text, page_predictions(fill), fill_mask(model, tokenizer, text, 5),
                                                   problems))
    report["max_probability_difference"][language] = largest
    report["fill_mask_texts"][language] = len(texts)

    no_mask = "No blank here." if language == "en" else "这里没有空。"
    fill.locator("textarea").fill(no_mask)
    run_widget(fill)
    if fill.get_attribute("data-state") != "input-error" or NO_MASK[language] not in fill.locator(".bert-live-status").inner_text():
        problems.append(f"{language}: {no_mask!r} did not give the one-line no-[MASK] message")

    ids = page.evaluate(TOKEN_IDS, TOKENIZER_TEXTS)
    for text, page_ids in zip(TOKENIZER_TEXTS, ids):
        if page_ids != tokenizer.encode(text)["input_ids"]:
            problems.append(f"tokenizer: {text!r}: page {page_ids} != Python {tokenizer.encode(text)['input_ids']}")
    report["tokenizer_texts"] = len(TOKENIZER_TEXTS)

    text_a, text_b = PAIRS[language]
    attention.locator("input").nth(0).fill(text_a)
    attention.locator("input").nth(1).fill(text_b)
    run_widget(attention)
    maps = page.evaluate(ALL_ATTENTION, [text_a, text_b])
    encoded = tokenizer.encode(text_a, text_b)
    with torch.no_grad():
        expected = model.bert(torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["token_type_ids"]]),
                              output_attentions=True)[2]
    difference = max((expected[layer][0, head] - torch.tensor(maps[layer][head]).view_as(expected[layer][0, head]))
                     .abs().max().item() for layer in range(len(expected)) for head in range(expected[0].shape[1]))
    report["max_attention_difference"][language] = difference
    if difference > ATTENTION_TOLERANCE:
        problems.append(f"{language}: attention maps differ from PyTorch's by {difference:.2e} > {ATTENTION_TOLERANCE}")
    summary = attention_summary(model, tokenizer, [(text_a, text_b)])
    attention.locator("select").nth(0).select_option("1")
    attention.locator("select").nth(1).select_option("2")
    if (attention.get_attribute("data-layer"), attention.get_attribute("data-head")) != ("1", "2"):
        problems.append(f"{language}: choosing layer 1, head 2 did not redraw the map")
    for target, values in summary.items():
        shown = float(attention.locator(f'tr[data-target="{target}"] td').first.get_attribute("data-live"))
        if abs(shown - values[1, 2].item()) > ATTENTION_TOLERANCE:
            problems.append(f"{language}: {target} average {shown} != attention_summary's {values[1, 2].item():.6f}")
    if attention.locator("canvas").evaluate("canvas => canvas.width") < 50:
        problems.append(f"{language}: the attention map was not drawn")
    problems += [f"{language}: console: {error}" for error in errors]
    page.close()
    return problems


def fallback_state(page, pending=("static", "loading")) -> tuple[str, str, int]:
    """(data-state, status line, number of built table cells) of the fill-mask widget once it has left `pending`."""
    widget = page.locator('.bert-live[data-widget="fill-mask"]')
    page.wait_for_function("([root, pending]) => !pending.includes(root.dataset.state)",
                           arg=[widget.element_handle(), list(pending)], timeout=LOAD_TIMEOUT_MS)
    return (widget.get_attribute("data-state"), widget.locator(".bert-live-status").inner_text(),
            widget.locator(".bert-live-static td").count())


def check_fallbacks(browser, base: str, site: Path) -> list[str]:
    """Where the model cannot run, the built outputs stay and one line says why (both editions)."""
    problems = []
    reasons = {"file://": ("unavailable", "HTTP"), "no fetch": ("unavailable", "fetch"),
               "failed download": ("failed", "bert-mini-bilingual.bin")}
    for language in ("en", "zh"):
        for case, (state, reason) in reasons.items():
            context = browser.new_context()
            page = context.new_page()
            if case == "no fetch":
                page.add_init_script("delete window.fetch")
            if case == "failed download":
                page.route("**/bert-mini-bilingual.bin", lambda route: route.fulfill(status=404, body="missing"))
            address = ((site.resolve() / language / "09_using_bert.html").as_uri() if case == "file://"
                       else f"{base}{language}/09_using_bert.html")
            page.goto(address, wait_until="load")
            if case == "failed download":
                page.wait_for_function("root => root.dataset.state === 'ready'",
                                       arg=page.locator(".bert-live").first.element_handle(), timeout=30_000)
                page.locator(".bert-live .bert-live-button").first.click()
            shown = fallback_state(page, ("static", "loading", "ready") if case == "failed download" else ("static", "loading"))
            if shown[0] != state or reason not in shown[1] or "\n" in shown[1].strip() or not shown[2]:
                problems.append(f"{language}, {case}: expected state {state!r}, a one-line reason naming {reason!r} "
                                f"and the built outputs; got {shown}")
            context.close()
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(f"{base}{language}/09_using_bert.html", wait_until="load")
        for widget in page.locator(".bert-live").all():
            if not widget.locator(".bert-live-static td").count() or "Python" not in widget.locator(".bert-live-status").inner_text():
                problems.append(f"{language}, without JavaScript: a widget lost its built outputs or its one-line note")
            if widget.locator(".bert-live-controls").is_visible():
                problems.append(f"{language}, without JavaScript: the widget shows controls that cannot work")
        context.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="_build/html", help="the built book (default: _build/html)")
    parser.add_argument("--output", default="_build/live-check.json", help="where to write the measurements")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    args = parser.parse_args(argv)
    site = Path(args.site)
    if not (site / "en" / "09_using_bert.html").exists():
        print(f"live_check: {site}/en/09_using_bert.html not found; build the book first with `make book`", file=sys.stderr)
        return 2
    if not (site / "_static" / "live" / LIVE_FILES[0]).exists():
        print(f"live_check: {site}/_static/live/{LIVE_FILES[0]} not found; the build did not export the model "
              "(see the build's 'live model' warning)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from bert_annotated.probing import load_book_model

    model, tokenizer = load_book_model()
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "device": f"CPU ({platform.machine()}, {platform.system()}), headless Chromium",
              "command": "python tools/live_check.py " + " ".join(argv or sys.argv[1:]),
              "download_bytes": {}, "load_seconds_wall": {}, "load_seconds_page": {}, "max_probability_difference": {},
              "max_attention_difference": {}, "fill_mask_texts": {}}
    problems: list[str] = []
    start = time.monotonic()
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        report["chromium"] = browser.version
        report["device"] += f" {browser.version}"
        for language in ("en", "zh"):
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
            try:
                problems += check_edition(context, base, language, model, tokenizer, report)
            except Exception as error:  # a timeout or a missing element is a failure, not a crash
                problems.append(f"{language}: {type(error).__name__}: {str(error).splitlines()[0]}")
            context.close()
        problems += check_fallbacks(browser, base, site)
        browser.close()
    report["seconds"] = round(time.monotonic() - start, 1)
    report["problems"] = problems
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for problem in problems:
        print(f"live_check: {problem}")
    print(f"live_check: {'FAIL' if problems else 'ok'}: download {report['download_bytes']} bytes, load "
          f"{report['load_seconds_wall']} s, max |Δp| {report['max_probability_difference']}, max |Δattention| "
          f"{report['max_attention_difference']} ({report['seconds']} s; {args.output})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
