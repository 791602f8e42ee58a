#!/usr/bin/env python3
"""Prove that a change (a refactoring of code/, say) changed nothing a reader of the book sees.

    tools/book_diff.py BEFORE AFTER [--ignore-paths] [--noise REGEX]... [--keep DIR]

BEFORE and AFTER are git revisions, or WORKTREE: the working tree as it is now, uncommitted changes
and untracked files that git does not ignore included. Each is checked out into a temporary folder
(git worktree add --detach, or a copy for WORKTREE) that shares this clone's main environment
(.envs/main) and Vega JavaScript, and its book is built as `make book` builds it, from the
committed reference results alone (ROSETTA_RESULTS_DIR unset), but without -W, so that a warning
does not stop the comparison. Then every page's visible text (_build/html/**/*.html: the article,
its tables one row a line, code blocks, tab labels; not scripts, styles or the navigation) and
every downloadable program (.py as text, .ipynb as its cells' sources) is compared, whitespace
normalized. Prints a unified diff per page that differs, their names and a one-line summary;
exit status 0 when nothing differs, 1 otherwise, 2 when a build made no HTML. Takes about 40 s
a build on 2 cores. Run it with any Python 3 (it needs only the standard library).

  --ignore-paths  a token that looks like a path under code/ (code/cnn_pytorch.py,
                  code/lab/harness.py) counts as its basename; says how many lines were equal
                  only thanks to this.
  --noise REGEX   ignore the text REGEX matches in any line (it reads <noise> on both sides;
                  '.*X.*' ignores whole lines with X), repeatable; added to the defaults below.
  --no-default-noise  leave the defaults out.
  --keep DIR      keep the two builds in DIR/before and DIR/after (default: removed).

Default noise (NOISE), all that two builds of one revision differed in: the defaults chapter's
PyTorch column reads a fresh process's seed (initial_seed() = ...) and the largest bias of a fresh
init (uniform within ±0.0469). The folder a build ran in reads <tree> wherever it shows.
Charts are compared as their Vega-Lite specs, one line a leaf (chart.vconcat[0]... = value).
"""
import argparse
import difflib
from functools import reduce
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.path.join(ROOT, ".envs", "main")
VENDOR = os.path.join(ROOT, "book", "_static", "vendor")
NOISE = [r"uniform within ±\d\.\d+",  # PyTorch's bias init: the largest of a fresh draw (defaults chapter)
         r"initial_seed\(\) = \d+"]  # PyTorch's seed, a new one per process (defaults chapter)
CODE_PATH = re.compile(r"(?<![\w./-])code/(?:[\w.-]+/)*([\w.-]+)")
BLOCK = {"p", "div", "section", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table",
         "br", "dt", "dd", "label", "figcaption", "caption", "blockquote", "ul", "ol", "dl", "hr"}
SKIP = {"script", "style", "noscript", "nav"}


class Text(html.parser.HTMLParser):
    """The visible text of a page: its <article> (the book's pages), else its <body>, else all."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.root = next((tag for tag in ("article", "body") if "<" + tag in page), None)
        self.buf, self.depth = [], 0 if self.root else 1
        self.skip = self.pre = self.cell = 0  # a table's row is one line, its cells joined by |
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.depth += tag == self.root
        self.skip += tag in SKIP
        self.pre += tag == "pre"
        self.cell += tag in ("td", "th")
        if tag in BLOCK or tag in ("td", "th"):
            self.emit(" | " if tag in ("td", "th") else " " if self.cell else "\n")

    def handle_endtag(self, tag):
        self.depth -= self.depth > 0 and tag == self.root
        self.skip -= self.skip > 0 and tag in SKIP
        self.pre -= self.pre > 0 and tag == "pre"
        self.cell -= self.cell > 0 and tag in ("td", "th")
        if tag in BLOCK:
            self.emit(" " if self.cell else "\n")

    def handle_data(self, data):
        if not self.skip:
            self.emit(data if self.pre else re.sub(r"\s+", " ", data))
        elif "vegaEmbed(" in data:  # a chart: its Vega-Lite spec (data, titles, axes), one key a line
            start = data.index("vegaEmbed(") + len("vegaEmbed(")
            start += re.match(r'\s*"[^"]*"\s*,\s*', data[start:]).end()
            spec = json.JSONDecoder().raw_decode(data, start)[0]
            self.emit("\n" + "\n".join(flat(spec, "chart")) + "\n", raw=True)

    def emit(self, text, raw=False):
        last = self.buf[-1] if self.buf else "\n"
        if not (self.pre or raw) and last.endswith("\n"):  # a line starts: no indent, no |
            text = re.sub(r"^ *(\| )?", "", text)
        elif not (self.pre or raw) and last.endswith(" "):  # one space between words
            text = text.lstrip(" ")
            text = text[2:] if text.startswith("| ") and last.endswith("| ") else text
        if self.depth and text:
            self.buf.append(text)

    def lines(self):
        return [line.rstrip() for line in "".join(self.buf).split("\n") if line.strip()]


def flat(value, key):
    """chart.vconcat[0].title = "..." : one line a leaf of a chart's spec, so that a diff says where."""
    if isinstance(value, dict):
        return [line for k in sorted(value) for line in flat(value[k], "{}.{}".format(key, k))]
    if isinstance(value, list):
        return [line for i, v in enumerate(value) for line in flat(v, "{}[{}]".format(key, i))]
    return ["{} = {}".format(key, json.dumps(value, ensure_ascii=False))]


def page_lines(path, tree):
    """A page's or program's lines as a reader sees them; the folder it was built in reads <tree>."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace(tree, "<tree>")
    if path.endswith(".html"):
        return Text(text).lines()
    if path.endswith(".ipynb"):
        cells = json.loads(text)["cells"]
        text = "\n".join("# [{} cell]\n{}".format(c["cell_type"], "".join(c["source"])) for c in cells)
    return [line.rstrip() for line in text.split("\n") if line.strip()]


def pages(html_dir):
    """{name: path} of every page and program; downloads' hashed folders left out of the name."""
    found = {}
    for folder, _, files in os.walk(html_dir):
        for name in files:
            if name.endswith((".html", ".py", ".ipynb")):
                rel = os.path.relpath(os.path.join(folder, name), html_dir)
                found[re.sub(r"^_downloads/[0-9a-f]+/", "_downloads/", rel)] = os.path.join(folder, name)
    return found


def checkout(rev, where):
    if rev == "WORKTREE":
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
        for rel in filter(None, listed):
            src, dst = os.path.join(ROOT, rel), os.path.join(where, rel)
            if os.path.lexists(src) and not os.path.isdir(src):  # a deleted file is still listed
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst, follow_symlinks=False)
    else:
        subprocess.run(["git", "worktree", "add", "--detach", where, rev], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)


def build(rev, where):
    """Checks rev out into where and builds its book; returns (exit status, warnings, seconds)."""
    checkout(rev, where)
    os.makedirs(os.path.join(where, ".envs"), exist_ok=True)
    os.symlink(ENV, os.path.join(where, ".envs", "main"))
    if os.path.exists(os.path.join(VENDOR, "VERSIONS")):
        os.symlink(VENDOR, os.path.join(where, "book", "_static", "vendor"))
    else:  # not fetched in this clone yet: fetched into the build's tree
        subprocess.run(["tools/vendor-js.sh"], cwd=where, check=True)
    env = {k: v for k, v in os.environ.items() if k != "ROSETTA_RESULTS_DIR"}
    start = time.time()
    with open(os.path.join(where, "build.log"), "w") as log:
        status = subprocess.run([".envs/main/bin/jupyter-book", "build", ".", "--all", "-n", "--keep-going"],
                                cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    with open(os.path.join(where, "build.log"), encoding="utf-8", errors="replace") as f:
        warnings = sum("WARNING:" in line for line in f)  # Sphinx's; not the kernel's "WARNING |"
    return status, warnings, time.time() - start


def compare(name, a, b, noise, ignore_paths):
    """(unified diff lines, lines equal only after path normalization) of one page."""
    a, b = ([reduce(lambda l, n: n.sub("<noise>", l), noise, l) for l in lines] for lines in (a, b))
    norm = (lambda l: CODE_PATH.sub(r"\1", l)) if ignore_paths else (lambda l: l)
    na, nb = [norm(l) for l in a], [norm(l) for l in b]
    matcher = difflib.SequenceMatcher(None, na, nb, autojunk=False)
    only_paths = sum(a[i + k] != b[j + k] for i, j, size in matcher.get_matching_blocks() for k in range(size))
    diff = list(difflib.unified_diff(na, nb, "before/" + name, "after/" + name, lineterm="", n=2))
    return diff, only_paths


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--ignore-paths", action="store_true")
    ap.add_argument("--noise", action="append", default=[], metavar="REGEX")
    ap.add_argument("--no-default-noise", action="store_true")
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()
    noise = [re.compile(p) for p in ([] if args.no_default_noise else NOISE) + args.noise]
    for _ in range(45):  # another process may be creating the environment: up to 15 min
        if os.path.exists(os.path.join(ENV, ".installed")):
            break
        print("book_diff: waiting for {}/.installed".format(ENV), file=sys.stderr)
        time.sleep(20)
    else:
        sys.exit("book_diff: {} was not created within 15 min".format(ENV))
    top = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="book-diff-")
    trees = {side: os.path.join(top, side) for side in ("before", "after")}
    html = {}
    try:
        for side, rev in (("before", args.before), ("after", args.after)):
            status, warnings, seconds = build(rev, trees[side])
            print("{}: {} built in {:.0f} s, exit status {}, {} warnings (log: {})".format(
                side, rev, seconds, status, warnings, os.path.join(trees[side], "build.log")), file=sys.stderr)
            if status:  # the log goes with the build unless --keep: its end, here
                with open(os.path.join(trees[side], "build.log"), errors="replace") as f:
                    sys.stderr.write("".join(f.readlines()[-30:]))
            html[side] = os.path.join(trees[side], "_build", "html")
            if not os.path.isdir(html[side]):
                print("book_diff: {} has no _build/html".format(rev), file=sys.stderr)
                return 2
        before, after = pages(html["before"]), pages(html["after"])
        differ, only_paths = [], 0
        for name in sorted(set(before) | set(after)):
            a = page_lines(before[name], trees["before"]) if name in before else []
            b = page_lines(after[name], trees["after"]) if name in after else []
            diff, equal_by_paths = compare(name, a, b, noise, args.ignore_paths)
            only_paths += equal_by_paths
            if diff or name not in before or name not in after:
                differ.append(name if name in before and name in after else
                              "{} (only in {})".format(name, "before" if name in before else "after"))
                print("\n".join(diff))
        print("".join("differs: {}\n".format(name) for name in differ) + "{} of {} pages and programs differ{}".format(
            len(differ), len(set(before) | set(after)),
            "; {} lines equal only with code/ paths as basenames".format(only_paths) if args.ignore_paths else ""))
        return 1 if differ else 0
    finally:
        if not args.keep:
            for side, tree in trees.items():
                if os.path.exists(os.path.join(tree, ".git")):
                    subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT)
            shutil.rmtree(top, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
