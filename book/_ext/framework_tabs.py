"""`framework-tabs`: one step's code from every framework module, in synchronized tabs.

    :::{framework-tabs} create_model
    pytorch: One sentence on what is particular to PyTorch here.
    jax: ...
    :::

The arguments name top-level functions or classes; each tab includes those its module defines,
with `literalinclude` and `:pyobject:`, from the module in code/ that the benchmark runs. A tab
whose module defines none of them says so in a sentence (`:missing:`), so no tab is ever empty.
Every implemented framework must have its sentence: a missing one is a build warning (an error
under `-W`). The tabs share the sync group `framework`, so a choice holds on every page.
"""
import ast
import json
import os
import sys

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "code"))
import common  # noqa: E402

logger = logging.getLogger(__name__)


def tabs():
    """(key, label, module) per implemented module, in the registry's order, each module once."""
    seen = {}
    for name in common.implemented_frameworks():
        spec = common.FRAMEWORKS[name]
        seen.setdefault(spec["module"], (common.tab(name), spec["label"], spec["module"],
                                         spec.get("legacy")))
    return list(seen.values())


def defined_names(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def parse_notes(lines):
    """'key: sentence' lines (a sentence may continue on indented lines) -> {key: sentence}."""
    notes, key = {}, None
    for line in lines:
        head, sep, rest = line.partition(":")
        if sep and line[:1].strip() and " " not in head:
            key = head.strip()
            notes[key] = rest.strip()
        elif key and line.strip():
            notes[key] += " " + line.strip()
    return notes


class FrameworkTabs(SphinxDirective):
    required_arguments = 1
    optional_arguments = 8
    has_content = True
    option_spec = {"missing": directives.unchanged}

    def run(self):
        notes = parse_notes(self.content)
        known = {common.tab(name) for name in common.FRAMEWORKS}
        for key in sorted(set(notes) - known):
            logger.warning("framework-tabs: %r is no framework tab (known: %s)", key,
                           ", ".join(sorted(known)), location=self.get_location())
        missing = self.options.get("missing", "{label} has no code of its own for this step.")
        lines = ["::::{tab-set}", ":sync-group: framework", ""]
        for key, label, module, legacy in tabs():
            path = os.path.join(ROOT, "code", module + ".py")
            self.env.note_dependency(path)
            names = [n for n in self.arguments if n in defined_names(path)]
            if key not in notes:
                logger.warning("framework-tabs: no sentence for %r (%s)", key, ", ".join(self.arguments),
                               location=self.get_location())
            lines += [":::{tab-item} " + label, ":sync: " + key, ""]
            for name in names:
                lines += ["```{literalinclude} /code/%s.py" % module, ":pyobject: " + name,
                          ":language: python", "```", ""]
            if not names:
                lines += [missing.format(label=label), ""]
            lines += [notes.get(key, ""), ""]
            if legacy:  # in every chapter: where to translate this framework's code to
                lines += ["```{admonition} Legacy framework", ":class: note", legacy, "```", ""]
            lines += [":::", ""]
        lines.append("::::")
        container = nodes.container()
        self.state.nested_parse(self.content.__class__(lines, self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("framework-tabs", FrameworkTabs)
    # The picker (_static/picker.js) lists the tabs on every page, tabs or not.
    app.add_js_file(None, body="window.ROSETTA_FRAMEWORKS = {};".format(
        json.dumps([[key, label] for key, label, _, _ in tabs()])))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
