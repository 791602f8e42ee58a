"""The built book in a real browser (Debian's Chromium, driven by Playwright) on localhost.

Every request to anything but localhost is blocked and recorded: the book must work offline.
Screenshots land in tests/artifacts/.
"""
import functools
import http.server
import os
import threading

import pytest

from conftest import ROOT
import common

pytestmark = pytest.mark.slow
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
STEPS = ["01-load-data", "02-model", "03-loss-optimizer", "04-train", "05-predict", "06-evaluate", "07-weights"]
TABS = list(dict.fromkeys(common.FRAMEWORKS[n]["label"] for n in common.implemented_frameworks()))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book):
    handler = functools.partial(QuietHandler, directory=os.path.join(ROOT, "_build", "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:{}/book/".format(server.server_address[1])
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api").sync_playwright().start()
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"])
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.outside = []

    def only_localhost(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            route.continue_()
        else:
            context.outside.append(url)
            route.abort()
    context.route("**/*", only_localhost)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def selected_tab(page):
    """The label of the checked tab in the page's first tab-set."""
    return page.evaluate("""() => {
        const input = document.querySelector('.sd-tab-set > input:checked');
        return input.nextElementSibling.textContent.trim(); }""")


def test_tab_choice_follows_to_every_chapter_and_survives_reload(site, page):
    other = TABS[-1]
    assert other != TABS[0], "needs two frameworks in the book"
    page.goto(site + "02-model.html")
    assert selected_tab(page) == TABS[0]
    page.locator(".sd-tab-set > label", has_text=other).first.click()
    assert selected_tab(page) == other
    for step in STEPS:
        page.goto(site + step + ".html")
        assert selected_tab(page) == other, step
        assert page.locator(".sd-tab-set > input:checked + label + .sd-tab-content").first.is_visible()
    page.reload()
    assert selected_tab(page) == other
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "chapter-06-evaluate.png"))
    assert page.context.outside == [] and page.errors == []


def test_every_step_has_one_nonempty_tab_per_framework(site, page):
    for step in STEPS:
        page.goto(site + step + ".html")
        tab_sets = page.locator(".sd-tab-set")
        assert tab_sets.count() == 1, step
        labels = [t.strip() for t in tab_sets.first.locator(":scope > label").all_text_contents()]
        assert labels == TABS, (step, labels)
        contents = tab_sets.first.locator(":scope > .sd-tab-content").all_text_contents()
        assert len(contents) == len(TABS) and all(len(c.strip()) > 40 for c in contents), step


def test_results_charts_draw_with_no_network(site, page):
    page.goto(site + "results.html")
    page.wait_for_selector(".rosetta-chart svg .mark-rect path", timeout=20000)
    assert page.locator(".rosetta-chart svg .mark-rect path").count() >= len(common.implemented_frameworks())
    assert not any("could not be drawn" in t for t in page.locator(".rosetta-chart").all_inner_texts())
    page.screenshot(path=os.path.join(ARTIFACTS, "results.png"), full_page=True)
    assert page.context.outside == [] and page.errors == []


def test_no_page_requests_anything_outside_localhost(site, page):
    for name in ["intro"] + STEPS + ["results", "defaults"]:
        page.goto(site + name + ".html")
        page.wait_for_load_state("networkidle")
    assert page.context.outside == []


def test_copy_button_copies_exactly_the_code_shown(site, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(site + "02-model.html")
    block = page.locator(".sd-tab-set > input:checked + label + .sd-tab-content div.highlight").first
    shown = block.locator("pre").inner_text()
    block.hover()
    block.locator("button.copybtn").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == shown.strip() and "def create_model" in copied


KEYS = list(dict.fromkeys(common.tab(n) for n in common.implemented_frameworks()))


def picked(page):
    return page.evaluate("document.getElementById('rosetta-picker').value")


def test_one_picker_on_every_page_drives_the_tabs_and_lives_in_the_url(site, page):
    key, label = KEYS[3], TABS[3]  # any framework but the first, whose tab shows by default
    page.goto(site + "02-model.html?framework=" + key)  # a shared link
    assert selected_tab(page) == label and picked(page) == key
    for name in ["intro", "04-train", "results", "defaults"]:  # pages with and without tabs
        page.goto(site + name + ".html")
        assert picked(page) == key, name
        assert "framework=" + key in page.url, name
    page.goto(site + "03-loss-optimizer.html")
    page.select_option("#rosetta-picker", KEYS[-1])
    assert selected_tab(page) == TABS[-1] and page.url.endswith("?framework=" + KEYS[-1])
    page.locator(".sd-tab-set > label", has_text=TABS[0]).first.click()  # a tab moves the picker
    assert picked(page) == KEYS[0] and page.url.endswith("?framework=" + KEYS[0])
    page.goto(site + "05-predict.html")
    assert selected_tab(page) == TABS[0]
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "picker.png"))
    assert page.context.outside == [] and page.errors == []


@pytest.mark.parametrize("width", [375, 1280])
def test_nine_tabs_fit_any_screen(browser, site, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for step in STEPS:
            page.goto(site + step + ".html?framework=" + KEYS[-1])
            fits = page.evaluate("""() => {
                const vw = document.documentElement.clientWidth;
                const labels = [...document.querySelector('.sd-tab-set').querySelectorAll(':scope > label')];
                const cut = labels.filter(l => l.scrollWidth > l.clientWidth + 1
                                          || l.getBoundingClientRect().right > vw + 1
                                          || l.getBoundingClientRect().left < -1);
                const active = document.querySelector('.sd-tab-set > input:checked + label').getBoundingClientRect();
                return {pageScrolls: document.documentElement.scrollWidth > vw + 1,
                        cut: cut.map(l => l.textContent.trim()),
                        activeVisible: active.width > 0 && active.left >= 0 && active.right <= vw + 1,
                        pickerVisible: document.getElementById('rosetta-picker').getBoundingClientRect().width > 0};
            }""")
            assert fits == dict(pageScrolls=False, cut=[], activeVisible=True, pickerVisible=True), (width, step, fits)
        page.screenshot(path=os.path.join(ARTIFACTS, "tabs-{}px.png".format(width)))
    finally:
        context.close()
