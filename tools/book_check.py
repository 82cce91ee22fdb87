r"""Load every page of the built book in headless Chromium and fail on what a reader would see broken.

`make book-check` serves `_build/html` on a free localhost port (python -m http.server) and opens
every page with Playwright driving Debian's Chromium (/usr/bin/chromium; nothing downloads a
browser). A page fails when it has

* a console error or an uncaught JavaScript exception;
* a request to another host (the book must work offline: MathJax is served from _static/mathjax);
* a failed or 4xx/5xx request, an image that did not load, or an internal link to a missing page
  or to a missing #anchor;
* math left unrendered: a `.math` element that MathJax did not typeset, a MathJax error (an unknown
  macro), or raw `$...$` in the text;
* raw TeX that MathJax shows as typed: a backslash escape inside a text-mode macro such as
  `\texttt{max\_predictions}` (MathJax prints the backslash; write `\mathtt{max\_predictions}`);
* raw TeX in the text, outside math: `\texttt`, `\emph`... (for example from a BibTeX field that
  the bibliography style prints as it is);
* a figure rendered as text: a cell output reading `<Figure size 640x400 with 1 Axes>` (a figure
  object returned instead of shown: call `plt.show()` or end the cell with `;`);
* (chapters) no "English / 中文" switch; (the 中文 part) no Chinese text, or no lang="zh-CN".

One full-page screenshot per page goes to _build/screenshots/<page>.png.

Usage:  python tools/book_check.py [--site _build/html] [--screenshots _build/screenshots]
                                   [--chromium /usr/bin/chromium] [--pages en/03_attention ...]
"""
from __future__ import annotations

import argparse
import contextlib
import html as html_lib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

# Playwright adds --headless itself; the rest keeps Chromium quiet on a machine without internet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
SKIPPED_FOLDERS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}
CJK = re.compile(r"[\u4e00-\u9fff]")
MIN_CHINESE_CHARACTERS = 20

# What the page reports back after it has loaded and MathJax has finished.
PAGE_REPORT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  }
  const article = document.querySelector("main") || document.body;
  const mathElements = Array.from(document.querySelectorAll(".math"));
  const unrendered = mathElements.filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.trim().slice(0, 60));
  const prose = Array.from(article.querySelectorAll("p, li, td, h1, h2, h3, dd"))
    .filter(e => !e.closest("pre, code, .cell_output, .highlight, mjx-container, .math"))
    .map(e => Array.from(e.childNodes).filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join(""))
    .join("\\n");
  const rawDollars = (prose.match(/\\$[^$\\s][^$\\n]{0,80}\\$/g) || []).slice(0, 3);
  // TeX that MathJax showed as text, such as the backslashes of \\_ inside \\texttt{...}, or a MathJax error
  const rawTex = Array.from(document.querySelectorAll("mjx-container"))
    .filter(e => e.querySelector("mjx-merror") || Array.from(e.querySelectorAll("mjx-c, mjx-utext"))
      .some(c => (c.textContent || "").includes("\\\\") || (c.className || "").toString().includes("mjx-c5C")))
    .map(e => (e.closest(".math") || e).textContent.trim().slice(0, 60)).slice(0, 3);
  const mathErrors = Array.from(document.querySelectorAll("mjx-merror"))
    .map(e => (e.getAttribute("data-mjx-error") || e.textContent || "").slice(0, 80));
  const brokenImages = Array.from(document.images)
    .filter(img => img.complete && img.naturalWidth === 0).map(img => img.getAttribute("src"));
  const links = Array.from(document.querySelectorAll("a[href]")).map(a => a.href);
  const ids = Array.from(document.querySelectorAll("[id]")).map(e => e.id)
    .concat(Array.from(document.querySelectorAll("a[name]")).map(a => a.name));
  const switchLinks = Array.from(document.querySelectorAll("nav.language-switch a")).map(a => a.href);
  return {
    lang: document.documentElement.lang,
    text: article.innerText,
    mathCount: mathElements.length,
    unrendered, rawDollars, rawTex, mathErrors, brokenImages, links, ids, switchLinks,
    hasSwitch: !!document.querySelector("nav.language-switch"),
  };
}"""


FIGURE_AS_TEXT = re.compile(r"<Figure size \d+(?:\.\d+)?x\d+(?:\.\d+)? with \d+ Axes>")
TEXT_MODE_MACRO = re.compile(r"\\(?:text(?:tt|rm|bf|it|sf|sc|normal)?|mbox)\s*\{")
RAW_TEX_IN_PROSE = re.compile(r"\\(?:texttt|textit|textbf|textsc|textrm|emph|mathrm|mathtt|url|href|cite|ref)\b")
RAW_DOLLARS = re.compile(r"\$[^$\s](?:[^$\n]{0,80}[^$\s\\])?\$(?!\d)")
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class PageText(HTMLParser):
    """The parts of a built page that the static checks read: cell outputs, math sources, prose."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []  # (tag, kind) of the open elements
        self.outputs: list[str] = []
        self.math: list[str] = []
        self.prose: list[str] = []

    def _kind(self, tag: str, attrs) -> str:
        classes = (dict(attrs).get("class") or "").split()
        if "cell_output" in classes:
            return "output"
        if "math" in classes:
            return "math"
        if tag in ("pre", "code", "script", "style", "mjx-container") or "highlight" in classes:
            return "code"
        return ""

    def handle_starttag(self, tag, attrs):
        if tag in VOID_ELEMENTS:
            return
        kind = self._kind(tag, attrs)
        if kind == "output":
            self.outputs.append("")
        elif kind == "math" and not self._inside("math"):
            self.math.append("")
        self.stack.append((tag, kind))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def _inside(self, kind: str) -> bool:
        return any(open_kind == kind for _, open_kind in self.stack)

    def handle_data(self, data):
        if self._inside("output"):
            self.outputs[-1] += data
        elif self._inside("math"):
            self.math[-1] += data
        elif not self._inside("code"):
            self.prose.append(data)


def _braced_argument(text: str, start: int) -> str:
    """The text of the {...} group opening at text[start - 1], braces balanced."""
    depth, index = 1, start
    while index < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[index], 0) if text[index - 1] != "\\" else 0
        index += 1
    return text[start:index - 1]


def raw_tex_in_math(tex: str) -> list[str]:
    """Backslash escapes inside text-mode macros, which MathJax shows as typed (\\texttt{a\\_b} -> 'a\\_b')."""
    found = []
    for match in TEXT_MODE_MACRO.finditer(tex):
        argument = _braced_argument(tex, match.end())
        if "\\" in argument:
            found.append(match.group(0) + argument + "}")
    return found


def static_problems(page_html: str) -> list[str]:
    """What a reader would see broken, decided from the page's HTML alone (no browser needed)."""
    page = PageText()
    page.feed(page_html)
    problems = []
    for output in page.outputs:
        for figure in FIGURE_AS_TEXT.findall(html_lib.unescape(output)):
            problems.append(f"a figure rendered as the text {figure!r}: show it (plt.show()) instead of returning it")
    for tex in page.math:
        for raw in raw_tex_in_math(tex):
            problems.append(f"raw TeX shown in math: {raw} (MathJax prints the backslashes inside text macros; use \\mathtt)")
    prose = "\n".join(page.prose)
    for raw in RAW_DOLLARS.findall(prose):
        problems.append(f"math left as raw text: {raw!r}")
    for match in RAW_TEX_IN_PROSE.finditer(prose):
        problems.append(f"raw TeX shown in the text: {prose[max(0, match.start() - 30):match.end() + 30]!r}")
    return problems


PHONE_VIEWPORT = {"width": 375, "height": 800}
# output images drawn wider than 600 px must be shown at 600 px or more (bilingual.css), and the page must not scroll
PHONE_REPORT = """() => {
  const shrunk = [];
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (img.naturalWidth >= 600 && img.getBoundingClientRect().width < 599) {
      shrunk.push([img.getAttribute("src"), img.naturalWidth, Math.round(img.getBoundingClientRect().width)]);
    }
  }
  return {shrunk, pageWidth: document.documentElement.scrollWidth};
}"""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(site: Path):
    """python -m http.server on a free port, stopped on exit."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the local web server on port {port} did not start")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def pages_of(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to it (index.html, en/03_attention.html, ...)."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        relative = path.relative_to(site)
        if relative.parts[0] not in SKIPPED_FOLDERS:
            pages.append(relative.as_posix())
    return pages


def is_chapter(page: str) -> bool:
    return bool(re.match(r"^(en|zh)/\d\d_", page))


class Checker:
    def __init__(self, site: Path, base: str, screenshots: Path):
        self.site, self.base, self.screenshots = site, base, screenshots
        self.anchors: dict[str, set[str]] = {}  # page -> ids, filled as pages are visited
        self.links: list[tuple[str, str]] = []  # (from page, absolute url) to check at the end
        self.math_counts: dict[str, int] = {}  # page -> number of formulas MathJax rendered

    def local_path(self, url: str) -> str | None:
        """The site-relative path of a URL served by our server, or None for other hosts."""
        if not url.startswith(self.base):
            return None
        path = unquote(urlparse(url).path)
        return path.lstrip("/") or "index.html"

    def check_page(self, browser, page_name: str) -> list[str]:
        problems: list[str] = []
        tab = browser.new_page()

        def on_request(route):
            url = route.request.url
            if url.startswith(self.base) or url.startswith("data:") or url.startswith("blob:"):
                route.continue_()
            else:
                problems.append(f"request to another host (the book must work offline): {url}")
                route.abort()

        tab.route("**/*", on_request)
        tab.on("console", lambda message: message.type == "error" and problems.append(
            f"console error: {message.text}"))
        tab.on("pageerror", lambda error: problems.append(f"JavaScript exception: {error}"))
        tab.on("requestfailed", lambda request: request.url.startswith(self.base) and problems.append(
            f"request failed: {request.url} ({request.failure})"))
        tab.on("response", lambda response: response.status >= 400 and problems.append(
            f"HTTP {response.status}: {response.url}"))

        tab.goto(self.base + page_name, wait_until="load", timeout=60_000)
        report = tab.evaluate(PAGE_REPORT)
        tab.wait_for_timeout(100)
        shot = self.screenshots / (page_name[: -len(".html")].replace("/", "__") + ".png")
        tab.screenshot(path=str(shot), full_page=True)
        phone = self.phone_problems(tab) if is_chapter(page_name) else []
        tab.close()

        self.math_counts[page_name] = report["mathCount"]
        self.anchors[page_name] = set(report["ids"])
        self.links += [(page_name, link) for link in report["links"]]
        for src in report["brokenImages"]:
            problems.append(f"image did not load: {src}")
        if report["unrendered"]:
            problems.append(f"{len(report['unrendered'])} of {report['mathCount']} math elements not rendered by "
                            f"MathJax, e.g. {report['unrendered'][0]!r}")
        for raw in report["rawDollars"]:
            problems.append(f"math left as raw text: {raw!r}")
        for raw in report["rawTex"]:
            problems.append(f"math shows raw TeX (a backslash or a MathJax error; use \\mathtt, not \\texttt): {raw!r}")
        for error in report["mathErrors"]:
            problems.append(f"MathJax error: {error!r}")
        problems += static_problems((self.site / page_name).read_text(encoding="utf-8"))
        problems += phone
        language = page_name.split("/", 1)[0] if "/" in page_name else None
        if language in ("en", "zh") and not report["hasSwitch"]:
            problems.append("no English / 中文 language switch at the top of the page")
        if is_chapter(page_name) and not report["switchLinks"]:
            problems.append("the language switch does not link to the other edition")
        if language == "zh":
            chinese = len(CJK.findall(report["text"]))
            if chinese < MIN_CHINESE_CHARACTERS:
                problems.append(f"page of the 中文 part has only {chinese} Chinese characters")
            if not report["lang"].lower().startswith("zh"):
                problems.append(f'<html lang="{report["lang"]}">, expected zh-CN')
        if language == "en" and report["lang"] != "en":
            problems.append(f'<html lang="{report["lang"]}">, expected en')
        return problems

    @staticmethod
    def phone_problems(tab) -> list[str]:
        """At a phone's width (375 px) a wide figure keeps 600 px and scrolls in its output area; the page does not."""
        tab.set_viewport_size(PHONE_VIEWPORT)
        tab.wait_for_timeout(100)
        report = tab.evaluate(PHONE_REPORT)
        problems = [f"at {PHONE_VIEWPORT['width']} px a figure of {natural} px is shrunk to {shown} px "
                    f"(labels unreadable): {src}" for src, natural, shown in report["shrunk"]]
        if report["pageWidth"] > PHONE_VIEWPORT["width"] + 1:
            problems.append(f"at {PHONE_VIEWPORT['width']} px the page itself is {report['pageWidth']} px wide")
        return problems

    def check_links(self) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = {}
        for page_name, link in self.links:
            path = self.local_path(link)
            if path is None:
                continue
            target, fragment = urldefrag(link)
            path = self.local_path(target)
            file = self.site / path
            if file.is_dir():
                file, path = file / "index.html", (path.rstrip("/") + "/index.html").lstrip("/")
            if not file.exists():
                problems.setdefault(page_name, []).append(f"broken link: {link}")
            elif fragment and path in self.anchors and unquote(fragment) not in self.anchors[path]:
                problems.setdefault(page_name, []).append(f"link to a missing anchor: {link}")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="_build/html", help="the built book (default: _build/html)")
    parser.add_argument("--screenshots", default="_build/screenshots", help="where to save one PNG per page")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary (Debian: apt-get install chromium)")
    parser.add_argument("--pages", nargs="*", help="check only these pages (e.g. en/03_attention)")
    args = parser.parse_args(argv)
    site, screenshots, chromium = Path(args.site), Path(args.screenshots), Path(args.chromium)
    if not (site / "index.html").exists():
        print(f"book_check: {site}/index.html not found; build the book first with `make book`", file=sys.stderr)
        return 2
    if not chromium.exists():
        print(f"book_check: {chromium} not found; install it with `apt-get install chromium chromium-driver` "
              "or pass --chromium", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("book_check: the Python package playwright is missing; run `make install-check`", file=sys.stderr)
        return 2
    pages = pages_of(site)
    if args.pages:
        pages = [p if p.endswith(".html") else p + ".html" for p in args.pages]
    screenshots.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    failures: dict[str, list[str]] = {}
    with serve(site) as base, tempfile.TemporaryDirectory(prefix="book-check-profile-") as profile, \
            sync_playwright() as playwright:
        # a new, empty profile (--user-data-dir) for every run
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        checker = Checker(site, base, screenshots)
        for page_name in pages:
            page_start = time.monotonic()
            try:
                problems = checker.check_page(browser, page_name)
            except Exception as error:  # a page that does not even load is a failure, not a crash
                problems = [f"could not load: {error}"]
            if problems:
                failures[page_name] = problems
            status = "FAIL" if problems else "ok"
            formulas = checker.math_counts.get(page_name, 0)
            print(f"{status:4s} {page_name} ({formulas} formulas, {time.monotonic() - page_start:.1f} s)", flush=True)
        browser.close()
        for page_name, problems in checker.check_links().items():
            failures.setdefault(page_name, []).extend(problems)
    for page_name, problems in failures.items():
        for problem in dict.fromkeys(problems):
            print(f"{page_name}: {problem}")
    print(f"checked {len(pages)} pages in {time.monotonic() - start:.0f} s; screenshots in {screenshots}/")
    print(f"{len(pages) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
