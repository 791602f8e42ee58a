"""Each framework's whole program, generated from its module: one .py script, one .ipynb notebook.

    python book/_ext/programs.py OUT_DIR     # writes cnn_<tab>.py and .ipynb, rnn_<tab>.py and .ipynb

A program is self-contained: the shared constants, the data loader and the helpers its module
imports from code/ are copied in (only what it uses, found by following names), and the module's
own code follows, cut into the book's steps as the chapters' framework-tabs cut it. The steps'
calls (load, build, train, predict, evaluate) are written once, here, for every framework. The
script is the notebook's cells one after another, so the two cannot drift apart. As a Sphinx
extension, it writes every program into _build/programs/ before the book is read.
"""
import ast
import json
import os
import re
import sys
import textwrap

import nbformat.v4 as nbf

import framework_tabs
from framework_tabs import ROOT, common

CODE = os.path.join(ROOT, "code")
OUT = os.path.join(ROOT, "_build", "programs")
# What differs between the two models' programs: what a module may import from code/ and its model's
# folder (where two define a name, prepare, the first one's is the program's), the dataset read by
# default and its alternatives, and how the program introduces itself and what it copies in.
PARTS = {
    "cnn": dict(library=["common", "datasets", "weights", "onnx_graph"], dataset="cifar10",
                others="or \"fashion-mnist\" (Debian's dataset-fashion-mnist), or \"synthetic\"", title="",
                what="The Rosetta Stone's CNN on CIFAR-10",
                sizes="the epochs and images (the seed's run: 10 epochs of 50,000)",
                shared="the data loader (`code/datasets.py`), the check of a weight list (`code/cnn/weights.py`)"),
    "rnn": dict(library=["common", "reviews", "rnn_weights", "datasets", "onnx_graph"], dataset="imdb",
                others="Keras' imdb.npz, downloaded; or \"synthetic\", made here", title=" (part II, the GRU)",
                what="The Rosetta Stone's GRU on IMDB reviews (part II)", about="the seed's: 3 epochs of 25,000",
                sizes="the epochs and reviews (the seed's run: 3 epochs of 25,000)",
                shared="the tokenizer and loader of the reviews (`code/reviews.py`), the check of a weight list "
                       "(`code/rnn/rnn_weights.py`), the minibatches"),
    "attention": dict(library=["common", "reviews", "attention_weights", "datasets", "onnx_graph"], dataset="imdb",
                      others="Keras' imdb.npz, downloaded; or \"synthetic\", made here",
                      title=" (part IV, the Transformer encoder)",
                      what="The Rosetta Stone's Transformer encoder on IMDB reviews (part IV)",
                      about="the seed's RNN's: 3 epochs of 25,000",
                      sizes="the epochs and reviews (3 epochs of 25,000, as the seed's RNN)",
                      shared="the tokenizer and loader of the reviews (`code/reviews.py`), the weight layout and "
                             "hyperparameters (`code/attention/attention_weights.py`), the minibatches",
                      calls={"Export": (
                          "try:\n"
                          "    export_onnx(model, \"attention.onnx\")\n"
                          "    print(\"attention.onnx: {:,} bytes\".format(os.path.getsize(\"attention.onnx\")))\n"
                          "except Exception as e:  # its packages missing, or an exporter that cannot (the chapter's table says which)\n"
                          "    print(\"not exported: {}: {}\".format(type(e).__name__, str(e).strip().splitlines()[0]))")}),
    "resnet": dict(library=["common", "images", "resnet_weights", "datasets", "onnx_graph"], dataset="cifar10",
                   others="or \"fashion-mnist\" (Debian's dataset-fashion-mnist), or \"synthetic\"",
                   title=" (part III, ResNet-50 features)", what="The Rosetta Stone's ResNet-50 features (part III)",
                   sizes="how many images (n_test; the seed timed 1,000)",
                   shared="the images, made once from the CNN's dataset (`code/resnet/images.py`), the check of the "
                          "weights (`code/resnet/resnet_weights.py`)",
                   calls={"Load the images": (
                       "try:\n"
                       "    prepare(DATASET)  # downloads (CIFAR-10) and decodes once; later runs read the cache\n"
                       "except DatasetError as e:  # no answer from the host, or a file that is not the dataset: what to do\n"
                       "    sys.exit(str(e))\n"
                       "batches = load_data(DATASET, PROFILE)\n"
                       "print(len(batches), \"batches of\", batches[0].shape)"),
                       "Build the model": "model = create_model()",
                       "Read what the zoo built": "print(describe(model))",
                       "Extract features": (
                           "start = time.perf_counter()\n"
                           "found = features(model, batches)\n"
                           "print(\"features {} in {:.1f} s\".format(found.shape, time.perf_counter() - start))"),
                       "Move weights": (
                           "print(\"{:,} parameters\".format(count_params(model)))\n"
                           "weights = get_weights(model)\n"
                           "set_weights(model, weights)  # and back: a round trip\n"
                           "print(len(weights), \"arrays in the neutral layout\")"),
                       "Export": (
                           "try:\n"
                           "    export_onnx(model, \"resnet50.onnx\")\n"
                           "    print(\"resnet50.onnx: {:,} bytes\".format(os.path.getsize(\"resnet50.onnx\")))\n"
                           "except Exception as e:  # its packages missing, or an exporter that cannot (the chapter's table says which)\n"
                           "    print(\"not exported: {}: {}\".format(type(e).__name__, str(e).strip().splitlines()[0]))")}),
}
LIBRARY = sorted(set().union(*[part["library"] for part in PARTS.values()]))
NESTED = re.compile(r"^[ \t]+from ({}) import [^\n]*\n".format("|".join(LIBRARY)), re.M)  # in a function: copied in
# Constants that name places in this repository get a value that makes sense anywhere.
REPLACE = {"DATA_DIR": 'DATA_DIR = "data"  # the download and the decoded arrays go here, next to the program'}
PARAMETERS = ("DATASET = \"{dataset}\"  # {others}\n"
              "PROFILE = dict(epochs={epochs}, n_train={n_train}, n_test={n_test})  # {about}")
# The calls of each step, keyed by chapter (part II: by section): written once for every framework.
CALLS = {
    "book/01-load-data": (
        "try:\n"
        "    prepare(DATASET)  # downloads (CIFAR-10) and decodes once; later runs read the cache\n"
        "except DatasetError as e:  # no answer from the host, or a file that is not the dataset: what to do\n"
        "    sys.exit(str(e))\n"
        "x_train, x_test, y_train, y_test = load_data(DATASET, PROFILE)\n"
        "print(\"train:\", x_train.shape, \"test:\", x_test.shape)"),
    "book/02-model": "model = create_model()",
    "book/03-loss-optimizer": "trainer = init_model(model)",
    "book/04-train": (
        "for epoch in range(PROFILE[\"epochs\"]):\n"
        "    start = time.perf_counter()\n"
        "    loss = train_epoch(trainer, minibatches(x_train, y_train, epoch=epoch))\n"
        "    print(\"epoch {}: loss {:.4f} ({:.1f} s)\".format(epoch + 1, loss, time.perf_counter() - start))"),
    "book/05-predict": "y_pred = predict(trainer, minibatches(x_test, None, shuffle=False))",
    "book/06-evaluate": (
        "print(\"{:,} parameters\".format(count_params(model)))\n"
        "print(\"accuracy: {:.4f} on {} test images\".format(evaluate(y_pred, y_test), len(y_pred)))"),
    "book/07-weights": (
        "weights = get_weights(model)\n"
        "set_weights(model, weights)  # and back: a round trip\n"
        "print([kernel.shape for kernel, bias in weights])"),
    "book/08-export": (
        "try:\n"
        "    export_onnx(model, \"cnn.onnx\")\n"
        "    print(\"cnn.onnx: {:,} bytes\".format(os.path.getsize(\"cnn.onnx\")))\n"
        "except ImportError as e:  # the exporter's packages are not installed: the rest ran without them\n"
        "    print(\"not exported: {} (the book's envs/<env>/requirements-onnx.txt lists them)\".format(e))"),
    "Load the data": (
        "try:\n"
        "    prepare(DATASET)  # downloads (IMDB) or makes (synthetic) the reviews once; later runs read the cache\n"
        "except DatasetError as e:  # no answer from the host, or a file that is not the dataset: what to do\n"
        "    sys.exit(str(e))\n"
        "x_train, x_test, y_train, y_test = load_data(DATASET, PROFILE)\n"
        "print(\"train:\", x_train.shape, \"test:\", x_test.shape)"),
    "Define the model": "model = create_model()",
    "Loss and optimizer": "trainer = init_model(model)",
    "Predict": (
        "y_pred = predict(trainer, minibatches(x_test, None, shuffle=False))\n"
        "print(\"accuracy: {:.4f} on {} test reviews\".format(evaluate(y_pred, y_test), len(y_pred)))"),
    "Move weights": (
        "print(\"{:,} parameters\".format(count_params(model)))\n"
        "weights = get_weights(model)\n"
        "set_weights(model, weights)  # and back: a round trip\n"
        "print([[w.shape for w in group] for group in weights])"),
}
CALLS["Train"] = CALLS["book/04-train"]
CALLS["Export"] = (
    "try:\n"
    "    export_onnx(model, \"rnn.onnx\")\n"
    "    print(\"rnn.onnx: {:,} bytes\".format(os.path.getsize(\"rnn.onnx\")))\n"
    "except Exception as e:  # its packages missing, or an exporter that cannot (the chapter's table says which)\n"
    "    print(\"not exported: {}: {}\".format(type(e).__name__, str(e).strip().splitlines()[0]))")
DRIVER_NAMES = {"prepare", "minibatches", "evaluate", "DatasetError"}  # the calls above use these from code/


DEFS = (ast.FunctionDef, ast.ClassDef)
IMPORTS = (ast.Import, ast.ImportFrom)


class Source:
    """A Python file's top-level statements: their text (with the comments just above them),
    the names each defines and the names each uses."""

    def __init__(self, name, model=framework_tabs.MODEL):
        self.name = name
        self.path = next(p for p in (framework_tabs.module_file(name, model), os.path.join(CODE, name + ".py"))
                         if os.path.exists(p))
        with open(self.path) as f:
            self.lines = f.read().splitlines()
        self.tree = ast.parse("\n".join(self.lines))
        self.docstring = ast.get_docstring(self.tree)
        modules = [a.name for s in self.tree.body if isinstance(s, ast.Import) for a in s.names if a.name in LIBRARY]
        # `import datasets` ... datasets.CACHE_DIR -> CACHE_DIR: the program has it copied in
        self.prefixed = re.compile(r"\b({})\.(?!py\b)(?=[A-Za-z_])".format("|".join(modules))) if modules else None
        self.stmts, self.replaced = [], {}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant):
                continue  # the docstring
            name = next(iter(defines(stmt))) if len(defines(stmt)) == 1 else None
            if name in REPLACE:
                stmt = ast.parse(REPLACE[name]).body[0]
                self.replaced[id(stmt)] = REPLACE[name]
            self.stmts.append(stmt)

    def text(self, stmt):
        if id(stmt) in self.replaced:
            return self.replaced[id(stmt)]
        start = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1
        while start > 0 and self.lines[start - 1].lstrip().startswith("#"):
            start -= 1
        text = "\n".join(self.lines[start:stmt.end_lineno])
        return self.prefixed.sub("", text) if self.prefixed else text


def defines(stmt):
    if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def uses(stmt):
    """The names a statement reads (`datasets.CACHE_DIR` reads CACHE_DIR, which the program copies in);
    a definition's own arguments and locals are not counted."""
    names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names |= {n.attr for n in ast.walk(stmt) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Name) and n.value.id in LIBRARY}
    if isinstance(stmt, DEFS):
        names -= {a.arg for a in ast.walk(stmt) if isinstance(a, ast.arg)}
        names -= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def is_local_import(stmt):
    """`from common import ...`, `import cnn_cntk`, `import datasets`: code of this repository, to be
    copied in."""
    if isinstance(stmt, ast.ImportFrom):
        return stmt.module in LIBRARY
    return isinstance(stmt, ast.Import) and any(a.name.split("_")[0] in common.MODELS or a.name in LIBRARY
                                               for a in stmt.names)


def closure(sources, wanted):
    """The statements of `sources` that define `wanted`, and what those need in turn, in file order;
    a name two sources define is the first one's. Imports come back apart, so that the program's
    imports stand together at its top."""
    defs = [(src, stmt) for src in sources for stmt in src.stmts if not is_local_import(stmt)]
    owner = {}
    for src, stmt in defs:
        for name in defines(stmt):
            owner.setdefault(name, src)
    wanted, chosen = set(wanted), set()
    while True:
        new = {i for i, (src, stmt) in enumerate(defs)
               if i not in chosen and {n for n in defines(stmt) if owner[n] is src} & wanted}
        if not new:
            break
        chosen |= new
        for i in new:
            wanted |= uses(defs[i][1])
    picked = [defs[i] for i in sorted(chosen)]
    imports = [(src, s) for src, s in picked if isinstance(s, (ast.Import, ast.ImportFrom))]
    code = [(src, s) for src, s in picked if not isinstance(s, (ast.Import, ast.ImportFrom))]
    return imports, code


def import_text(src, stmt, needed):
    """An import line that names only what the program uses (`from x import a, b`, or `import x`)."""
    if isinstance(stmt, ast.Import):
        return src.text(stmt)
    names = [a for a in stmt.names if (a.asname or a.name) in needed]
    return "from {} import {}".format(stmt.module, ", ".join(
        a.name + (" as " + a.asname if a.asname else "") for a in names))


def tab_frameworks(model=framework_tabs.MODEL):
    """{tab key: the first framework of the registry shown in that tab}."""
    out = {}
    for name in common.implemented_frameworks(model=model):
        out.setdefault(common.tab(name), name)
    return out


def environment_lines(framework):
    """common.environment as program lines: what the harness sets before the framework is imported."""
    lines = ['os.environ.setdefault("{}", "{}")'.format(*item) for item in common.environment(framework).items()]
    return [line + ("  # no TF32 in cuDNN and cuBLAS" if "NVIDIA_TF32_OVERRIDE" in line else "") for line in lines]


def cells(tab, dataset=None, profile="full", model=framework_tabs.MODEL):
    """The notebook's cells, as (kind, source, tags) triples."""
    framework = tab_frameworks(model)[tab]
    spec = common.ROWS[framework]
    module = Source(spec["module"], model)
    local = [Source(a.name, model) for s in module.stmts if isinstance(s, ast.Import) and is_local_import(s)
             for a in s.names if a.name.startswith(model + "_")]
    steps = framework_tabs.steps(model)
    functions = {s.name: s for s in module.stmts if isinstance(s, DEFS)}
    cell_of = place(functions, steps, [s for s in module.stmts if not isinstance(s, DEFS)])

    # What the module and its local imports take from code/, and the driver's helpers.
    wanted = set(DRIVER_NAMES)
    for src in [module] + local:
        for stmt in src.stmts:  # imports at the top, and in functions (export_onnx's onnx_graph)
            for node in ast.walk(stmt):
                if isinstance(node, ast.ImportFrom) and node.module in LIBRARY:
                    wanted |= {a.asname or a.name for a in node.names}
    part = PARTS[model]
    lib_imports, lib_code = closure([Source(name, model) for name in part["library"]], wanted)
    needed = set().union(*[uses(s) for _, s in lib_code])
    imports = ["import os", "import sys", "import time"] + [import_text(src, s, needed) for src, s in lib_imports]
    imports = list(dict.fromkeys(line for line in imports if not line.endswith(" import ")))
    setup = []  # a local module's setup (imports, module-level code and the functions it calls) ...
    for src in local:
        top = [s for s in src.stmts if not isinstance(s, DEFS) and not is_local_import(s)]
        defs = {s.name: s for s in src.stmts if isinstance(s, DEFS)}
        # what its setup calls, and what the module takes from it by name (attention_cntk.gelu: gelu)
        taken = {n.attr for stmt in module.stmts for n in ast.walk(stmt) if isinstance(n, ast.Attribute)
                 and isinstance(n.value, ast.Name) and n.value.id == src.name}
        called = (set().union(*[uses(s) for s in top]) | taken) & set(defs)
        while True:  # and what those call (cnn_cntk's device check calls its probe)
            more = set().union(*[uses(defs[name]) for name in called]) & set(defs)
            if more <= called:
                break
            called |= more
        setup += [(src, s) for s in src.stmts if s in top or getattr(s, "name", None) in called]
    setup += [(module, s) for s in module.stmts  # ... then the module's own, in its order
              if not is_local_import(s) and not (isinstance(s, DEFS) and cell_of[s.name] != 0)]

    def code(pairs):  # cnn_cntk.GPU -> GPU: the local module's setup is copied in above
        text = NESTED.sub("", join(pairs))
        for src in local:
            text = text.replace(src.name + ".", "")
        return ("code", text, [])

    prof = dict(common.profile(profile, model), dataset=dataset or part["dataset"], others=part["others"])
    prof["about"] = part.get("about", prof["about"])
    out = [("markdown", intro(tab, framework, module, local, model), []),
           ("code", PARAMETERS.format(**prof), ["parameters"]),
           ("code", "\n".join(imports + [""] + environment_lines(framework)), []),
           ("markdown", "Shared by every framework in the book: the hyperparameters, {} and the accuracy "
            "(`code/datasets.py`).".format(part["shared"]), []),
           code(lib_code),
           ("markdown", "{}'s own setup: its imports and settings.".format(spec["label"]), []),
           code(setup)]
    for i, step in enumerate(steps, 1):
        out.append(("markdown", "## {}\n\n{}".format(step["title"], step["notes"].get(tab, "")).strip(), []))
        defs = [(module, s) for s in functions.values() if cell_of[s.name] == i]
        if defs:
            out.append(code(defs))
        calls = part.get("calls", {}).get(step["title"]) or CALLS.get(step["doc"] if model == framework_tabs.MODEL else step["title"])
        if calls:
            out.append(("code", calls, []))
    rest = [(module, s) for s in functions.values() if cell_of[s.name] == len(steps) + 1]
    out += [("markdown", "## Where it ran", []), code(rest), ("code", "print(runtime_info())", [])]
    return out


def place(functions, steps, top):
    """Which cell each function goes to: 1 + its step's index, or the first step that uses it;
    a function no step names goes to the setup (0) when module-level code calls it, else to the end."""
    top_uses = set().union(*[uses(s) for s in top])
    cell_of = {}
    for name in functions:
        found = [i for i, step in enumerate(steps, 1) if name in step["names"]]
        cell_of[name] = found[0] if found else (0 if name in top_uses else len(steps) + 1)
    changed = True
    while changed:  # a function an earlier cell uses moves up to it
        changed = False
        for name, stmt in functions.items():
            for used in uses(stmt) & set(functions):
                if cell_of[used] > cell_of[name]:
                    cell_of[used], changed = cell_of[name], True
    return cell_of


def join(pairs):
    """(source, statement) pairs as a file has them: two blank lines around definitions."""
    out = []
    for i, (src, stmt) in enumerate(pairs):
        if i:
            before = pairs[i - 1][1]
            out.append("\n\n\n" if isinstance(stmt, DEFS) or isinstance(before, DEFS) else
                       "\n\n" if isinstance(before, IMPORTS) and not isinstance(stmt, IMPORTS) else "\n")
        out.append(src.text(stmt))
    return "".join(out)


def intro(tab, framework, module, local, model=framework_tabs.MODEL):
    spec = common.ROWS[framework]
    others = [n for n in common.implemented_frameworks(model=model) if common.tab(n) == tab and n != framework]
    folder, part = common.MODELS[model]["folder"], PARTS[model]
    lines = ["# {}: the whole program{}".format(spec["label"], part["title"]), "",
             " ".join(module.docstring.split("\n\n")[0].split()), "",
             "{}, generated from `code/{}/{}.py`{} with everything it imports from the book's code copied in, "
             "cut into the book's steps. It needs only the framework and NumPy. `PROFILE` sets {}; "
             "`DATASET = \"synthetic\"` needs no download.".format(
                 part["what"], folder, spec["module"], "".join(" and `code/{}/{}.py`".format(folder, s.name) for s in local),
                 part["sizes"])]
    if others:
        backends = " or ".join("`{}`".format(common.ROWS[n]["vars"]["KERAS_BACKEND"]) for n in others)
        lines += ["", "The same code runs on the other backends: set the environment variable "
                  "`KERAS_BACKEND` to {} before it starts.".format(backends)]
    return "\n".join(lines)


def notebook(tab, **kwargs):
    return as_notebook(cells(tab, **kwargs))


def as_notebook(cells_):
    nb = nbf.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source, tags in cells_:
        cell = nbf.new_markdown_cell(source) if kind == "markdown" else nbf.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def wrap(text, prefix=""):
    return "\n".join("\n".join(textwrap.wrap(line, 98, initial_indent=prefix, subsequent_indent=prefix))
                     or prefix.rstrip() for line in text.splitlines())


def script(tab, **kwargs):
    return as_script(cells(tab, **kwargs))


def as_script(cells_):
    """The cells one after another; the introduction is the docstring, the other text comments."""
    (_, intro_text, _), *rest = cells_
    parts = [source if kind == "code" else wrap(source, "# ") for kind, source, _ in rest]
    return '"""{}\n"""\n{}\n'.format(wrap(intro_text[len("# "):]), "\n\n\n".join(parts))


def write_all(out=OUT, **kwargs):
    """<model>_<tab>.py and .ipynb for every model and tab; returns {module: (script path, notebook path)}."""
    import nbformat
    os.makedirs(out, exist_ok=True)
    paths = {}
    for model in PARTS:
        for tab, framework in tab_frameworks(model).items():
            module = common.ROWS[framework]["module"]
            base = os.path.join(out, module)
            both = cells(tab, model=model, **kwargs)
            with open(base + ".py", "w") as f:
                f.write(as_script(both))
            nbformat.write(as_notebook(both), base + ".ipynb")
            paths[module] = (base + ".py", base + ".ipynb")
    return paths


def setup(app):
    app.connect("builder-inited", lambda app: write_all())
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(json.dumps(write_all(sys.argv[1] if len(sys.argv) > 1 else OUT), indent=1))
