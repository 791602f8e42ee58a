"""The table of contents: the book's parts, each with its caption, and every page in exactly one."""
import glob
import os
import re

import pytest

from conftest import ROOT

yaml = pytest.importorskip("yaml")

PARTS = {  # caption: its chapters, in the book's order
    "Part I: the CNN, step by step": ["book/01-load-data", "book/02-model", "book/03-loss-optimizer",
                                      "book/04-train", "book/05-predict", "book/06-evaluate"],
    "What the CNN shows further": ["book/07-weights", "book/08-export", "book/09-scale-out"],
    "Part II: the GRU": ["book/rnn", "book/rnn-compare"],
    "Part III: ResNet-50 features": ["book/resnet", "book/resnet-compare"],
    "Part IV: a Transformer encoder": ["book/attention", "book/attention-compare"],
    "Across the book": ["book/compare", "book/results", "book/fast", "book/defaults"],
}


def toc():
    with open(os.path.join(ROOT, "_toc.yml")) as f:
        return yaml.safe_load(f)


def test_the_toc_has_the_parts_with_their_captions_in_order():
    book = toc()
    assert book["format"] == "jb-book" and book["root"] == "book/intro"
    assert "chapters" not in book, "chapters outside a part: the sidebar shows them without a caption"
    parts = [(p["caption"], [c["file"] for c in p["chapters"]]) for p in book.get("parts", [])]
    assert parts == list(PARTS.items())


def test_every_page_of_the_book_is_in_exactly_one_part():
    listed = [c["file"] for p in toc().get("parts", []) for c in p["chapters"]]
    pages = {os.path.relpath(p, ROOT)[:-3] for p in glob.glob(os.path.join(ROOT, "book", "*.md"))}
    assert sorted(listed) == sorted(pages - {"book/intro"}), "a page twice, or in no part"


def test_the_introduction_presents_each_part_and_each_compare_page_says_which_part():
    with open(os.path.join(ROOT, "book", "intro.md")) as f:
        intro = f.read()
    for caption in PARTS:
        assert "**{}.**".format(caption) in intro, caption
    assert re.search(r"\| DenseNet-121 [^\n]*\| chapter 9, on the CNN, not DenseNet-121", intro)
    for page, part, other in [("compare", "part I, the CNN", "rnn-compare"), ("rnn-compare", "part II, the GRU", "compare"),
                                ("attention-compare", "part IV, the Transformer encoder", "compare")]:
        with open(os.path.join(ROOT, "book", page + ".md")) as f:
            first = f.read().split("\n\n")[1]  # the paragraph under the title
        assert "This page compares {}".format(part) in first and "<{}>`".format(other) in first, page
