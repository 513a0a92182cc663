"""The built book in a real browser: a small book (a Markdown landing page and an executed notebook with
math, a figure, collapsed cells and an exercise, built with the book's own ``_config.yml``) opened in
headless Chromium through the Chrome DevTools protocol. Checks: no JavaScript errors, MathJax typeset every
formula offline (no raw TeX left), every image loaded, the search page finds a word of the chapter, and
collapsed cells expand. Screenshots of each page go to ``tests/artifacts/browser/`` for review.

Set ``ALIGNLIB_BROWSER_BOOK=_build/html`` to run the same checks on every page of an already built book
(``alignlib book``). Skips with a message when Chromium (the Debian ``chromium`` package) is absent.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from alignlib.paths import REPO_ROOT

CHROMIUM = os.environ.get("ALIGNLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "browser"
SEARCH_WORD = "retinotopy"
# Failed loads that are MathJax 2's own and change nothing visible: its "MathJax_Blank" font probe
# (src: about:blank, refused by Chromium's CORS rule) and the TeX web fonts (absent from the
# jupyter-server-mathjax package) that the hidden assistive MathML of a \mathcal formula asks for; the
# visible formulas use the STIX-Web fonts (_config.yml) and are checked below.
BENIGN = ("Access to font at 'about:blank'", "net::ERR_FAILED about:blank", "/_static/mathjax/fonts/HTML-CSS/TeX/otf/",
          "favicon.ico")

pytest.importorskip("websocket", reason="the browser test needs websocket-client (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found: install the Debian package (`apt-get install chromium`, as "
                             ".ci/run does) or set ALIGNLIB_CHROMIUM to a Chromium binary")

# What the page reports after load, math and images (evaluated in the page).
PAGE_REPORT_JS = r"""
(async () => {
  const wait = ms => new Promise(r => setTimeout(r, ms));
  if (window.MathJax && MathJax.Hub) {                 // MathJax 2: wait for its queue to empty
    await new Promise(r => MathJax.Hub.Queue(() => r(true)));
  }
  document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = "eager"; });
  await Promise.all(Array.from(document.images).map(i => i.complete ? true :
      new Promise(r => { i.addEventListener("load", r); i.addEventListener("error", r); })));
  await wait(100);
  const math = Array.from(document.querySelectorAll(".math.notranslate"));   // Sphinx's math, not MathJax's spans
  const untypeset = math.filter(m => !m.querySelector(".MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML, mjx-container"));
  const text = document.body.cloneNode(true);
  text.querySelectorAll("pre, code, script, style, textarea, .MathJax_Preview, .highlight").forEach(e => e.remove());
  const raw = (text.textContent.match(/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac|\\mathcal/g) || []);
  return {
    title: document.title,
    mathjax: !!(window.MathJax && MathJax.Hub),
    n_math: math.length,
    untypeset: untypeset.map(m => m.textContent.slice(0, 80)),
    math_errors: document.querySelectorAll(".MathJax_Error, merror, .mjx-merror").length,
    raw_tex: raw,
    images: document.images.length,
    broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120)),
    hidden_cells: document.querySelectorAll("details.hide, .toggle-hidden, .tag_hide-input, .tag_hide-cell").length,
  };
})()
"""

# Opens every collapsed element (myst-nb's <details class="hide"> and sphinx-togglebutton's buttons) and
# reports how many were hidden before and shown after.
EXPAND_JS = r"""
(async () => {
  const wait = ms => new Promise(r => setTimeout(r, ms));
  // checkVisibility: false inside a closed <details> (Chromium lays its content out, content-visibility: hidden)
  const shown = e => e.checkVisibility ? e.checkVisibility({checkVisibilityCSS: true, checkOpacity: true})
                                       : !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const details = Array.from(document.querySelectorAll("details.hide"));
  const detailsBody = d => Array.from(d.children).filter(c => c.tagName !== "SUMMARY");
  const closedBefore = details.filter(d => !d.open && detailsBody(d).every(c => !shown(c))).length;
  details.forEach(d => d.querySelector("summary").click());
  const toggles = Array.from(document.querySelectorAll(".toggle-hidden"));   // sphinx-togglebutton dropdowns
  const toggleBody = t => Array.from(t.children).filter(c => !c.classList.contains("admonition-title") && c.tagName !== "BUTTON");
  const togglesHiddenBefore = toggles.filter(t => toggleBody(t).every(c => !shown(c))).length;
  document.querySelectorAll("button.toggle-button").forEach(b => b.click());
  await wait(600);
  return {
    details: details.length, details_closed_before: closedBefore,
    details_open_after: details.filter(d => d.open && detailsBody(d).some(shown)).length,
    toggles: toggles.length, toggles_hidden_before: togglesHiddenBefore,
    toggles_shown_after: toggles.filter(t => toggleBody(t).some(shown)).length,
  };
})()
"""

SEARCH_JS = r"""
(async () => {
  const wait = ms => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 100; i++) {
    const hits = document.querySelectorAll("#search-results li a, ul.search li a");
    const status = (document.querySelector("#search-results .search-summary, #search-results p") || {}).textContent || "";
    if (hits.length || /did not match|no documents|found 0|0 page/i.test(status)) {
      return {hits: Array.from(hits).map(a => a.getAttribute("href")), status: status};
    }
    await wait(100);
  }
  return {hits: [], status: "timed out"};
})()
"""


class DevToolsPage:
    """One headless Chromium with one page, driven through the Chrome DevTools protocol (websocket-client)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
             "--disable-extensions", "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--window-size=1280,1400", "--hide-scrollbars"]

    def __init__(self, binary: str, profile_dir: Path, timeout: float = 60):
        import websocket

        self.timeout = timeout
        self.proc = subprocess.Popen([binary, *self.FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start (exit code {self.proc.returncode})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages:
                break
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=int(self.timeout * 1000))
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (events before it are kept for :meth:`errors`)."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {self.timeout} s")
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)

    def errors(self) -> list[str]:
        """JavaScript exceptions, console errors and failed loads since the last :meth:`open`, except
        :data:`BENIGN` ones."""
        found = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                found.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                entry = p["entry"]
                found.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
        return [f for f in found if not any(b in f for b in BENIGN)]

    def screenshot(self, path: Path, max_height: int = 6000) -> None:
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def write_small_book(root: Path) -> list[str]:
    """A two-page book with the repository's ``_config.yml``; returns its pages (without suffix)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    shutil.copy(REPO_ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(REPO_ROOT / "book" / "_ext", root / "book" / "_ext")   # the book's local Sphinx extension
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - caption: Chapter\n"
                                   "    chapters:\n      - file: chapter/page\n")
    (root / "intro.md").write_text(
        "# Landing\n\nInline math $e_i = r_i w_i$ and a display:\n\n"
        "$$\n\\mathcal{L} = -\\frac{1}{B}\\sum_i \\log \\frac{e^{s_{ii}/\\tau}}{\\sum_j e^{s_{ij}/\\tau}}\n$$\n\n"
        "```{tableofcontents}\n```\n")
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_markdown_cell(f"# A chapter page\n\nThis page is about {SEARCH_WORD}. A power law "
                          "$\\lambda_k \\propto k^{-\\alpha}$, and\n\n$$\\hat y = \\sum_k w_k x_k$$"),
        new_code_cell("import matplotlib.pyplot as plt", metadata={"tags": ["hide-input"]}, execution_count=1,
                      outputs=[new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})]),
        new_code_cell("profile = 'smoke'", metadata={"tags": ["hide-cell"]}, execution_count=2,
                      outputs=[new_output("stream", name="stdout", text="set\n")]),
        new_markdown_cell("## Exercises\n\n```{exercise}\n:label: browser-ex\nWhat is $2 + 2$?\n```\n\n"
                          "```{solution} browser-ex\n:class: dropdown\nIt is $4$.\n```\n"),
    ]
    (root / "chapter").mkdir()
    nbformat.write(nb, root / "chapter" / "page.ipynb")
    return ["intro", "chapter/page"]


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on the loopback interface (as a reader's browser would load the site;
    ``file://`` pages cannot load fonts or run the search the same way); yields the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check_page(browser: DevToolsPage, base_url: str, page: str) -> dict:
    """Open one page; assert no JavaScript error, all math typeset, all images loaded; screenshot it."""
    browser.open(f"{base_url}/{page}.html")
    report = browser.evaluate(PAGE_REPORT_JS)
    browser.screenshot(ARTIFACTS / f"{page.replace('/', '__')}.png")
    problems = browser.errors()
    if report["n_math"]:
        if not report["mathjax"]:
            problems.append("the page has math but MathJax did not load")
        problems += [f"formula not typeset: {t!r}" for t in report["untypeset"]]
        if report["math_errors"]:
            problems.append(f"{report['math_errors']} MathJax errors")
    problems += [f"raw TeX left in the page: {t!r}" for t in report["raw_tex"]]
    problems += [f"image not loaded: {src}" for src in report["broken_images"]]
    assert not problems, f"{page}: " + "; ".join(problems)
    return report


def check_search(browser: DevToolsPage, base_url: str, word: str) -> list[str]:
    browser.open(f"{base_url}/search.html?q={word}")
    found = browser.evaluate(SEARCH_JS)
    browser.screenshot(ARTIFACTS / "search.png")
    assert not browser.errors(), f"search page: {browser.errors()}"
    return found["hits"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = DevToolsPage(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    from alignlib.runner import build_book

    root = tmp_path_factory.mktemp("browser_book")
    pages = write_small_book(root)
    html = build_book(root, log=lambda line: None)
    with serve(html) as url:
        yield url, pages


def test_small_book_in_chromium(browser, small_book):
    url, pages = small_book
    reports = {page: check_page(browser, url, page) for page in pages}
    assert reports["intro"]["n_math"] >= 2 and reports["intro"]["mathjax"], "the landing page's math must be checked"
    assert reports["chapter/page"]["n_math"] >= 3
    assert reports["chapter/page"]["images"] >= 1, "the notebook's figure must be on the page"
    assert reports["chapter/page"]["hidden_cells"] >= 2, "hide-input and hide-cell must render as toggles"


def test_collapsed_cells_expand(browser, small_book):
    url, _ = small_book
    browser.open(f"{url}/chapter/page.html")
    browser.evaluate(PAGE_REPORT_JS)
    state = browser.evaluate(EXPAND_JS)
    assert state["details"] >= 2 and state["details_closed_before"] == state["details"], state
    assert state["details_open_after"] == state["details"], f"a collapsed cell did not expand: {state}"
    assert state["toggles"] >= 1 and state["toggles_hidden_before"] == state["toggles"], \
        f"the exercise's solution must start hidden: {state}"
    assert state["toggles_shown_after"] == state["toggles"], f"the solution did not expand: {state}"
    browser.screenshot(ARTIFACTS / "chapter__page-expanded.png")
    assert not browser.errors()


def test_search_finds_a_chapter_word(browser, small_book):
    url, _ = small_book
    hits = check_search(browser, url, SEARCH_WORD)
    assert any("chapter/page" in h for h in hits), f"search for {SEARCH_WORD!r} found {hits}"
    assert not check_search(browser, url, "qwzxvbnmpl"), "a word on no page must find nothing"


def test_browser_catches_broken_pages(browser, tmp_path):
    """The checks fail on a page with a JavaScript error, a missing image and TeX MathJax did not typeset."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><span class="math notranslate">\\(x^2\\)</span><img src="missing.png">'
                    '<script>undefinedFunction()</script></body></html>')
    with serve(tmp_path) as url, pytest.raises(AssertionError) as err:
        check_page(browser, url, "broken")
    message = str(err.value)
    assert "undefinedFunction" in message and "image not loaded" in message
    assert "formula not typeset" in message and "raw TeX" in message


@pytest.mark.skipif(not os.environ.get("ALIGNLIB_BROWSER_BOOK"),
                    reason="set ALIGNLIB_BROWSER_BOOK=_build/html to check every page of a built book")
def test_built_book_in_chromium(browser):
    from alignlib.runner.book import toc_files

    html = Path(os.environ["ALIGNLIB_BROWSER_BOOK"]).resolve()
    pages = toc_files(html.parents[1]) if (html.parents[1] / "_toc.yml").exists() else toc_files()
    failures = []
    with serve(html) as url:
        for page in pages:
            try:
                check_page(browser, url, page)
            except AssertionError as err:
                failures.append(str(err))
        assert not failures, "\n".join(failures)
        assert check_search(browser, url, "retrieval"), "search must find a word of the DINA chapter"
