"""`framework-compare`: any two frameworks side by side, step by step, function by function.

Everything comes from what the chapters already show: the steps and sentences of their
framework-tabs (framework_tabs.steps()) and the functions of the modules in code/cnn/. Every
framework's cells are in the page; _static/compare.js shows the pair the reader picks (and keeps
it in the URL, ?from=pytorch&to=jax). Where two modules build the model layer by layer in one
function, its lines are also aligned layer by layer, from the code itself (align()).
"""
import difflib
import html
import os
import re

from docutils import nodes
from docutils.parsers.rst import directives
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from sphinx.util.docutils import SphinxDirective

import framework_tabs
from framework_tabs import ROOT

# The layers a line of model code builds, by the names the frameworks give them.
LAYER_KINDS = [
    ("conv", r"\b(Conv2d|Conv2D|Convolution2D|conv)\("),
    ("pool", r"\b(MaxPool2d|MaxPool2D|MaxPooling2D|MaxPooling|max_pool2d|max_pool|max_pooling_2d)\("),
    ("dropout", r"\b(Dropout|dropout)\("),
    ("flatten", r"\b(Flatten|flatten)\("),
    ("dense", r"\b(Linear|Dense|fc)\("),
]
ALIGNED = "create_model"  # the function whose lines may correspond one to one


def layers_of(line):
    """The layers a line builds, in the order they appear on it ('conv', 'pool', ...)."""
    code = line.split("#")[0]
    found = [(m.start(), kind) for kind, pattern in LAYER_KINDS for m in re.finditer(pattern, code)]
    return [kind for _, kind in sorted(found)]


def is_layer_by_layer(lines):
    """Whether a function builds the seed's layers one call at a time: four convolutions, two pooling
    layers and two dense ones, each written out (not in a loop, not in a class of its own)."""
    kinds = [k for line in lines for k in layers_of(line)]
    return (kinds.count("conv"), kinds.count("pool"), kinds.count("dense")) == (4, 2, 2)


def align(a, b):
    """Rows of two functions' lines: [((a_start, a_end), (b_start, b_end)), ...], ends exclusive.
    The two sequences of layers are matched in order (difflib). Lines that build matched layers
    share a row, a layer only one side has gets a row with the other side empty, a line that
    builds nothing stays in the row above it, and the lines before the first layer and after
    the last one form an opening and a closing row."""
    layers_a = [(i, k) for i, line in enumerate(a) for k in layers_of(line)]
    layers_b = [(i, k) for i, line in enumerate(b) for k in layers_of(line)]
    slots = []  # (line in a or None, line in b or None), in order
    matcher = difflib.SequenceMatcher(None, [k for _, k in layers_a], [k for _, k in layers_b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            slots += [(layers_a[i][0], layers_b[j][0]) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            slots += [(layers_a[i][0], None) for i in range(i1, i2)] + [(None, layers_b[j][0]) for j in range(j1, j2)]
    groups = []  # consecutive slots that share a line on either side are one row
    for la, lb in slots:
        if groups and ((la is not None and la in groups[-1][0]) or (lb is not None and lb in groups[-1][1])):
            groups[-1][0].add(la), groups[-1][1].add(lb)
        else:
            groups.append(({la}, {lb}))
    starts = [(min(ga - {None}, default=None), min(gb - {None}, default=None)) for ga, gb in groups]
    end_a = max((i for i, _ in layers_a), default=-1) + 1
    end_b = max((i for i, _ in layers_b), default=-1) + 1
    at_a = min((i for i, _ in layers_a), default=end_a)
    at_b = min((i for i, _ in layers_b), default=end_b)
    rows = [((0, at_a), (0, at_b))]
    for k, (sa, sb) in enumerate(starts):
        next_a = next((s for s, _ in starts[k + 1:] if s is not None), end_a)
        next_b = next((s for _, s in starts[k + 1:] if s is not None), end_b)
        stop_a, stop_b = next_a if sa is not None else at_a, next_b if sb is not None else at_b
        rows.append(((at_a, stop_a), (at_b, stop_b)))
        at_a, at_b = stop_a, stop_b
    rows.append(((end_a, len(a)), (end_b, len(b))))
    return [r for r in rows if r[0][0] < r[0][1] or r[1][0] < r[1][1]]


def module_sources(env, model=framework_tabs.MODEL):
    """{tab key: {name: source}} of every tab's module, each noted as a dependency of the page."""
    sources = {}
    for key, _, module, _ in framework_tabs.tabs(model):
        path = framework_tabs.module_file(module, model)
        env.note_dependency(path)
        sources[key] = framework_tabs.definitions(path)
    return sources


def layer_by_layer(sources):
    """{tab key: the lines of its ALIGNED function} of the modules that build the model layer by layer."""
    lines = {key: src[ALIGNED].splitlines() for key, src in sources.items() if ALIGNED in src}
    return {key: found for key, found in lines.items() if is_layer_by_layer(found)}


def code_html(text):
    if not text.strip():
        return '<div class="rosetta-compare-gap"></div>'
    return '<div class="highlight-python notranslate"><div class="highlight"><pre>{}</pre></div></div>'.format(
        highlight(text, PythonLexer(), HtmlFormatter(nowrap=True)))


def aligned_table(key_a, lines_a, key_b, lines_b):
    rows = []
    for (a0, a1), (b0, b1) in align(lines_a, lines_b):
        rows.append("<tr><td>{}</td><td>{}</td></tr>".format(
            code_html("\n".join(lines_a[a0:a1])), code_html("\n".join(lines_b[b0:b1]))))
    return '<table class="rosetta-aligned" data-pair="{} {}"><tbody>{}</tbody></table>'.format(
        key_a, key_b, "".join(rows))


class FrameworkCompare(SphinxDirective):
    has_content = False
    option_spec = {"model": directives.unchanged}  # part II's GRU has a page of its own

    def run(self):
        model = self.options.get("model", framework_tabs.MODEL)
        tabs = framework_tabs.tabs(model)
        sources = module_sources(self.env, model)
        for doc in framework_tabs.chapters():
            self.env.note_dependency(os.path.join(ROOT, doc + ".md"))
        root = nodes.container(classes=["rosetta-compare"])
        options = "".join('<option value="{}">{}</option>'.format(k, html.escape(l)) for k, l, _, _ in tabs)
        root += nodes.raw("", (
            '<form class="rosetta-compare-pick" onsubmit="return false">'
            '<label>From <select name="from" aria-label="The framework you know">{0}</select></label>'
            '<button type="button" class="rosetta-compare-swap" title="Swap the two">&#8646;</button>'
            '<label>To <select name="to" aria-label="The framework you move to">{0}</select></label>'
            '</form>').format(options), format="html")
        here = self.env.docname
        for step in framework_tabs.steps(model):
            section = nodes.container(classes=["rosetta-compare-step"])
            chapter = os.path.relpath(step["doc"], os.path.dirname(here))
            self.parse(section, "**{}** ({})".format(step["title"], "[the section]({}.md#{})".format(
                chapter, step["anchor"]) if step["anchor"] else "{{doc}}`the chapter <{}>`".format(chapter)))
            notes = nodes.container(classes=["rosetta-compare-row", "rosetta-compare-notes"])
            for side in ("from", "to"):
                col = nodes.container(classes=["rosetta-compare-col", "side-" + side])
                for key, label, _, _ in tabs:
                    cell = nodes.container(classes=["rosetta-compare-cell", "fw-" + key])
                    self.parse(cell, "**{}**: {}".format(label, step["notes"].get(key, "")))
                    col += cell
                notes += col
            section += notes
            for name in step["names"]:
                having = [key for key, _, _, _ in tabs if name in sources[key]]
                if not having:
                    continue
                row = nodes.container(classes=["rosetta-compare-row", "rosetta-compare-code"]
                                      + ["has-" + key for key in having] + (["fn-" + name]))
                for side in ("from", "to"):
                    col = nodes.container(classes=["rosetta-compare-col", "side-" + side])
                    for key, label, _, _ in tabs:
                        cell = nodes.container(classes=["rosetta-compare-cell", "fw-" + key])
                        cell += nodes.paragraph("", "{}: {}".format(label, name), classes=["rosetta-compare-caption"])
                        if name in sources[key]:
                            cell += nodes.literal_block(sources[key][name], sources[key][name], language="python")
                        else:
                            self.parse(cell, "{} has no `{}` of its own.".format(label, name))
                        col += cell
                    row += col
                section += row
                if name == ALIGNED:
                    section += self.aligned(sources)
            root += section
        return [root]

    def aligned(self, sources):
        lines = layer_by_layer(sources)
        able = list(lines)
        tables = [aligned_table(a, lines[a], b, lines[b]) for a in able for b in able if a != b]
        return nodes.raw("", '<div class="rosetta-compare-aligned" data-frameworks="{}">{}</div>'.format(
            " ".join(able), "".join(tables)), format="html")

    def parse(self, node, text):
        self.state.nested_parse(self.content.__class__(text.splitlines(), self.get_source_info()[0]),
                                self.content_offset, node)


class AlignedFrameworks(SphinxDirective):
    """The sentence that names which frameworks' model lines are aligned, read from the code."""

    def run(self):
        able = layer_by_layer(module_sources(self.env))
        names = [label for key, label, _, _ in framework_tabs.tabs() if key in able]
        paragraph = nodes.paragraph()
        paragraph += nodes.Text("Line by line today: {}.".format(", ".join(names)))
        return [paragraph]


def setup(app):
    app.add_directive("framework-compare", FrameworkCompare)
    app.add_directive("aligned-frameworks", AlignedFrameworks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
