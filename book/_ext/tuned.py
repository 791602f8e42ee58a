"""`tuned-diff`: each tuned module as the changes it makes to its faithful twin, in the book's tabs
(and `parallel-diff`, the same for the data-parallel modules of the Scale out chapter).

    :::{tuned-diff}
    pytorch: A sentence per change: what it does.
    :::

For every framework tab (the same synchronized tabs as the chapters), the tuned module's switches
(its top-level statements) and, for each function or class it redefines, a unified diff against
the faithful module's; one that builds on the faithful function by calling it is shown whole.
A framework without a tuned row says so. Read from code/ when the book is built.
"""
import ast
import difflib
import os

from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import framework_tabs
from framework_tabs import ROOT, common, definitions, parse_notes, parsed

logger = logging.getLogger(__name__)


def tuned_modules():
    """{tab key: (faithful module, tuned module)} for the tuned rows whose module exists."""
    out = {}
    for name in common.implemented_frameworks(tuned=True):
        spec = common.ROWS[name]
        if "twin" in spec:
            out.setdefault(common.tab(name), (common.ROWS[spec["twin"]]["module"], spec["module"]))
    return out


def source(module):
    return framework_tabs.module_file(module)


def header(path):
    """The module's top-level statements other than its docstring, functions and classes: its
    imports and the switches that decide which change is on."""
    with open(path) as f:
        text = f.read()
    lines = text.splitlines()
    body = ast.parse(text).body
    keep = [n for n in body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return "\n".join("\n".join(lines[n.lineno - 1:n.end_lineno]) for n in keep)


def changes(faithful, tuned):
    """[(name, kind, text)]: kind 'diff' (a unified diff against the faithful definition), 'new'
    (no faithful definition of that name), 'wraps' (it calls the faithful one) or 'same' (the
    faithful code, repeated so that it calls the tuned module's names), in the tuned module's order."""
    before, after = definitions(source(faithful)), definitions(source(tuned))
    out = []
    for name, text in after.items():
        if name not in before:
            out.append((name, "new", text))
        elif "faithful.{}(".format(name) in text:
            out.append((name, "wraps", text))
        else:
            diff = list(difflib.unified_diff(before[name].splitlines(), text.splitlines(), lineterm="", n=2))
            # the two file lines are in the caption; no diff: the same code, calling this module's names
            out.append((name, "diff", "\n".join(diff[2:])) if diff else (name, "same", text))
    return out


def fenced(language, text):
    fence = "`" * max(3, max((len(run) for run in text.split() if set(run) == {"`"}), default=0) + 1)
    return [fence + language, text, fence, ""]


def changed(directive, faithful, module):
    """The MyST lines of `module`'s top-level lines and of each function it changes, against `faithful`."""
    for path in (source(faithful), source(module)):
        directive.env.note_dependency(path)
    lines = ["`{}`: its imports, its switches and its other top-level lines".format(os.path.relpath(source(module), ROOT)), ""]
    lines += fenced("python", header(source(module)))
    for name, kind, text in changes(faithful, module):
        lines += ["`{}`: {}".format(name, {
            "new": "new in this module", "wraps": "builds on the faithful one",
            "same": "the faithful code, repeated here so that the names it calls are this module's",
            "diff": "changed, against `{}`".format(os.path.relpath(source(faithful), ROOT))}[kind]), ""]
        lines += fenced("diff" if kind == "diff" else "python", text)
    return lines


class TunedDiff(SphinxDirective):
    has_content = True

    def run(self):
        notes = parse_notes(self.content)
        modules = tuned_modules()
        for key in sorted(set(modules) - set(notes)):
            logger.warning("tuned-diff: no sentence for %r", key, location=self.get_location())
        lines = ["::::{tab-set}", ":sync-group: framework", ""]
        for key, label, module, _ in framework_tabs.tabs():
            lines += [":::{tab-item} " + label, ":sync: " + key, ""]
            if key not in modules:
                lines += ["{} has no tuned row: the book tunes the frameworks people start new work in "
                          "(PyTorch, TensorFlow, Keras 3 and JAX).".format(label), "", ":::", ""]
                continue
            lines += [notes.get(key, ""), ""] + changed(self, *modules[key]) + [":::", ""]
        lines.append("::::")
        return parsed(self, lines)


class ParallelDiff(SphinxDirective):
    """`parallel-diff`: each data-parallel module (common.PARALLEL) as its changes to the
    faithful module, with the lines that launch it here and on several machines."""
    has_content = True

    def run(self):
        from lab import launch
        notes = parse_notes(self.content)
        rows = {}
        for name in common.PARALLEL:
            rows.setdefault(common.tab(name), []).append(name)
        for key in sorted(set(rows) - set(notes)):
            logger.warning("parallel-diff: no sentence for %r", key, location=self.get_location())
        self.env.note_dependency(os.path.join(ROOT, "code", "lab", "launch.py"))
        lines = ["::::{tab-set}", ":sync-group: framework", ""]
        for key, label, module, _ in framework_tabs.tabs():
            lines += [":::{tab-item} " + label, ":sync: " + key, "", notes.get(key, ""), ""]
            for name in rows.get(key, []):
                if len(rows[key]) > 1:
                    lines += ["**{}** (`{}`)".format(name, common.PARALLEL[name]["module"]), ""]
                lines += ["Launched here, two processes on this machine:", ""]
                lines += fenced("bash", launch.launch_lines(name))
                lines += ["On two machines with eight GPUs each (not run here):", ""]
                lines += fenced("bash", launch.CLUSTER[name])
                lines += changed(self, common.ROWS[name]["module"], common.PARALLEL[name]["module"])
            lines += [":::", ""]
        lines.append("::::")
        return parsed(self, lines)


def setup(app):
    app.add_directive("tuned-diff", TunedDiff)
    app.add_directive("parallel-diff", ParallelDiff)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
