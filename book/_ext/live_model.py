"""The book's model, live in the page (chapter 09; Appendix J).

Cells made by `bert_annotated.live` write a ``<div class="bert-live">`` that holds the outputs computed
in Python. On the pages that have one, this extension adds ``_static/live/bert-live.js`` and its
stylesheet; when the HTML build has finished it exports the book's model into ``_static/live/`` (the
manifest, the float16 weights and the vocabulary: ``bert_annotated.live.export_browser_model``), so the
script can load it when the reader asks. A failed export is a build warning, and the pages keep
their built outputs.
"""
from __future__ import annotations

import os
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
LIVE_FOLDER = ("_static", "live")
LIVE_ASSETS = ("live/bert-live.js", "live/bert-live.css")


def keep_live_assets_off_other_pages(app, config):
    """Jupyter Book adds every .js and .css under _static to every page; these two belong on widget pages only."""
    def is_live(entry):
        return (entry[0] if isinstance(entry, (tuple, list)) else entry) in LIVE_ASSETS
    config.html_js_files = [entry for entry in config.html_js_files if not is_live(entry)]
    config.html_css_files = [entry for entry in config.html_css_files if not is_live(entry)]


def add_live_script(app, pagename, templatename, context, doctree):
    """The script and stylesheet only on pages with a live widget: other pages download nothing more."""
    if 'class="bert-live"' in (context.get("body") or ""):
        # the builder's methods, not app.add_*: Sphinx resets the builder's list for every page, while
        # app.add_* also registers the file for the whole site
        app.builder.add_css_file("live/bert-live.css")
        app.builder.add_js_file("live/bert-live.js", defer="defer")


def export_live_model(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from bert_annotated.checkpoints import book_model_dir
    from bert_annotated.live import export_browser_model

    output = Path(app.outdir, *LIVE_FOLDER)
    try:
        manifest = export_browser_model(book_model_dir(), output)
    except (OSError, ValueError) as error:
        logger.warning(f"live model: not exported ({error}); the pages show their built outputs only")
        return
    for name in (manifest["weights_file"], manifest["vocab_file"], "bert-mini-bilingual.json"):
        os.chmod(output / name, 0o644)  # served as static files: readable by the web server's user
    size = sum((output / name).stat().st_size for name in (manifest["weights_file"], manifest["vocab_file"],
                                                             "bert-mini-bilingual.json"))
    logger.info(f"live model: {size / 1e6:.1f} MB exported to {output}")


def setup(app):
    app.connect("config-inited", keep_live_assets_off_other_pages)
    app.connect("html-page-context", add_live_script)
    app.connect("build-finished", export_live_model)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
