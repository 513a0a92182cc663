"""Two fixes to the book's HTML, as a local Sphinx extension (``_config.yml``: ``sphinx: local_extensions``;
kept outside the ``alignlib`` package so that the HTML build does not import torch); found by the browser
test (``tests/test_browser.py``).

- Inline scripts added twice: sphinx-thebe and sphinx-togglebutton add their inline configuration scripts
  after the HTML builder is initialised, so Sphinx 7 registers them twice, and the second
  ``const THEBE_JS_URL = ...`` raises ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
  declared`` on every page. Each page's scripts are deduplicated (same file, same attributes).
- No default colour mode: pydata-sphinx-theme reads ``default_mode`` from the page context and, when it
  is empty (sphinx-book-theme does not set it), logs "Got invalid theme mode" as a console error. The
  book uses the light mode (its figures have white backgrounds) unless ``html_context`` sets another.
"""
from __future__ import annotations


def _fix_page(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        seen, unique = set(), []
        for js in scripts:
            # the same inline script arrives once with filename None and once with "" (registry, builder)
            key = (getattr(js, "filename", js) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def setup(app):
    app.connect("html-page-context", _fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
