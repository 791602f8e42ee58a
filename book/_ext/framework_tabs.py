"""`framework-tabs`: one step's code from every framework module, in synchronized tabs.

    :::{framework-tabs} create_model
    pytorch: One sentence on what is particular to PyTorch here.
    jax: ...
    :::

The arguments name top-level functions or classes; each tab includes those its module defines,
with `literalinclude` and `:pyobject:`, from the module in the model's folder (code/cnn/; the
option `:model:` names another) that the benchmark runs. A tab
whose module defines none of them says so in a sentence (`:missing:`), so no tab is ever empty.
Every implemented framework must have its sentence: a missing one is a build warning (an error
under `-W`). The tabs share the sync group `framework`, so a choice holds on every page.
"""
import ast
import json
import os
import re
import sys

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "code"))
import common  # noqa: E402

logger = logging.getLogger(__name__)


MODEL = "cnn"  # the model of a page that names none


def tabs(model=MODEL):
    """(key, label, module, legacy) per implemented module of `model`, in the registry's order, each
    module once."""
    seen = {}
    for name in common.implemented_frameworks(model=model):
        spec = common.ROWS[name]
        seen.setdefault(spec["module"], (common.tab(name), spec["label"], spec["module"],
                                         spec.get("legacy")))
    return list(seen.values())


def module_file(module, model=MODEL):
    return os.path.join(common.model_dir(model), module + ".py")


def definitions(path):
    """{name: source} of a module's top-level functions and classes, decorators included."""
    with open(path) as f:
        text = f.read()
    lines = text.splitlines()
    out = {}
    for node in ast.parse(text, path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return out


def defined_names(path):
    return set(definitions(path))


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


COMPARE = {"cnn": "book/compare", "rnn": "book/rnn-compare", "resnet": "book/resnet-compare",
           "attention": "book/attention-compare"}  # the pages of book/_ext/compare.py
LINKS = ("```{{container}} rosetta-tab-links\n"
         "The whole program: {{download}}`{module}.py <{program}.py>` · "
         "{{download}}`{module}.ipynb <{program}.ipynb>` · "
         '<a href="{compare}?from={key}">compare {label} with another framework</a>\n```')
DIRECTIVE = re.compile(r"^:::\{framework-tabs\}([^\n]*)\n(.*?)^:::$", re.M | re.S)


def chapters():
    """The book's chapters, in the table of contents' order (file names without .md)."""
    with open(os.path.join(ROOT, "_toc.yml")) as f:
        return re.findall(r"^\s*- file: (\S+)", f.read(), re.M)


def steps(model=MODEL):
    """Every chapter's framework-tabs of `model`, in the book's order: what the compare view and the
    whole programs are made of, so that nothing in them is typed twice. One dict per step: doc (the
    chapter's path), title (its heading; where a page holds several steps, as part II's does, the
    heading of the step's own section), anchor (that section's id, or None), names (the directive's
    arguments) and notes ({tab key: its sentence})."""
    out = []
    for doc in chapters():
        with open(os.path.join(ROOT, doc + ".md")) as f:
            text = f.read()
        found = [m for m in DIRECTIVE.finditer(text)
                 if dict(re.findall(r"^:(\w+): *(.*)$", m.group(2), re.M)).get("model", MODEL) == model]
        for match in found:
            lines = [l for l in match.group(2).splitlines() if not l.startswith(":")]
            section = re.findall(r"^#+ (.+)$", text[:match.start()], re.M)[-1] if len(found) > 1 else None
            out.append(dict(doc=doc, title=section or re.search(r"^# (.+)$", text, re.M).group(1),
                            anchor=section and re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-"),
                            names=match.group(1).split(), notes=parse_notes(lines)))
    return out


class FrameworkTabs(SphinxDirective):
    required_arguments = 1
    optional_arguments = 32  # part IV's model step names 21: each framework's own pieces
    has_content = True
    option_spec = {"missing": directives.unchanged, "model": directives.unchanged}

    def run(self):
        notes = parse_notes(self.content)
        known = {common.tab(name) for name in common.FRAMEWORKS}
        for key in sorted(set(notes) - known):
            logger.warning("framework-tabs: %r is no framework tab (known: %s)", key,
                           ", ".join(sorted(known)), location=self.get_location())
        missing = self.options.get("missing", "{label} has no code of its own for this step.")
        lines = ["::::{tab-set}", ":sync-group: framework", ""]
        model = self.options.get("model", MODEL)
        compare = self.env.app.builder.get_relative_uri(self.env.docname, COMPARE[model])
        for key, label, module, legacy in tabs(model):
            path = module_file(module, model)
            self.env.note_dependency(path)
            names = [n for n in self.arguments if n in defined_names(path)]
            if key not in notes:
                logger.warning("framework-tabs: no sentence for %r (%s)", key, ", ".join(self.arguments),
                               location=self.get_location())
            lines += [":::{tab-item} " + label, ":sync: " + key, ""]
            for name in names:
                lines += ["```{literalinclude} /" + os.path.relpath(path, ROOT), ":pyobject: " + name,
                          ":language: python", "```", ""]
            if not names:
                lines += [missing.format(label=label), ""]
            lines += [notes.get(key, ""), ""]
            program = "/_build/programs/" + module  # written by programs.py when the build starts
            lines += LINKS.format(module=module, program=program, compare=compare, key=key, label=label).split("\n") + [""]
            if legacy:  # in every chapter: where to translate this framework's code to
                lines += ["```{admonition} Legacy framework", ":class: note", legacy, "```", ""]
            lines += [":::", ""]
        lines.append("::::")
        return parsed(self, lines)


def parsed(directive, lines):
    """The nodes of MyST `lines` written by a directive, parsed where the directive stands."""
    container = nodes.container()
    directive.state.nested_parse(directive.content.__class__(lines, directive.get_source_info()[0]),
                                 directive.content_offset, container)
    return container.children


def setup(app):
    app.add_directive("framework-tabs", FrameworkTabs)
    # The picker (_static/picker.js) lists the tabs on every page, tabs or not.
    app.add_js_file(None, body="window.ROSETTA_FRAMEWORKS = {};".format(
        json.dumps([[key, label] for key, label, _, _ in tabs()])))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
