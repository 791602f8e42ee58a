"""Keep every page free of Thebe, which Jupyter Book 1 always loads and this book never uses.

sphinx-thebe puts a script naming a CDN URL (unpkg) on every page, declares it twice under
Sphinx 7 (a JavaScript error on every page load), and adds an inert binder config to each page
with code cells. The book must work offline and without errors, so all three are dropped.
"""
from docutils import nodes


def _is_thebe(asset):
    return "thebe" in (getattr(asset, "filename", None) or str(asset)) or \
        "THEBE_JS_URL" in getattr(asset, "attributes", {}).get("body", "")


def drop_assets(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]


def drop_config(app, doctree, docname):
    for node in list(doctree.findall(nodes.raw)):
        if "x-thebe-config" in node.astext():
            node.parent.remove(node)


def setup(app):
    app.connect("html-page-context", drop_assets, priority=900)
    app.connect("doctree-resolved", drop_config)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
