"""The built book in a real browser (Debian's Chromium, driven by Playwright) on localhost.

Every request to anything but localhost is blocked and recorded: the book must work offline.
Screenshots land in tests/artifacts/.
"""
import functools
import http.server
import os
import sys
import threading

import pytest

from conftest import ROOT
import common

pytestmark = pytest.mark.slow
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
STEPS = ["01-load-data", "02-model", "03-loss-optimizer", "04-train", "05-predict", "06-evaluate", "07-weights", "08-export"]
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
    """Each page loaded, its charts drawn, and a moment more: Chromium's "networkidle" never came on
    some loads of the results page here although no request was left open (old and new builds alike)."""
    for name in ["intro"] + STEPS + ["09-scale-out", "compare", "results", "defaults"]:
        page.goto(site + name + ".html")
        page.wait_for_load_state("load")
        page.wait_for_function("[...document.querySelectorAll('.rosetta-chart')].every(c => c.querySelector('svg'))")
        page.wait_for_timeout(500)
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
    for name in ["intro"] + STEPS + ["09-scale-out", "compare", "results", "defaults"]:  # pages with and without tabs
        page.goto(site + name + ".html")
        assert picked(page) == key, name
        assert "framework=" + key in page.url, name
        if name in STEPS + ["09-scale-out"]:
            assert selected_tab(page) == label, name
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
                const picker = document.getElementById('rosetta-picker').getBoundingClientRect();
                return {pageScrolls: document.documentElement.scrollWidth > vw + 1,
                        cut: cut.map(l => l.textContent.trim()),
                        activeVisible: active.width > 0 && active.left >= 0 && active.right <= vw + 1,
                        pickerVisible: picker.width > 0,
                        // whole, and nothing over it (the page's top bar once covered its top)
                        pickerWhole: picker.top >= 0 && [picker.top + 1, picker.bottom - 1].every(y =>
                            document.elementFromPoint(picker.left + picker.width / 2, y)?.closest('.rosetta-picker') != null)};
            }""")
            assert fits == dict(pageScrolls=False, cut=[], activeVisible=True, pickerVisible=True, pickerWhole=True), (
                width, step, fits)
        page.screenshot(path=os.path.join(ARTIFACTS, "tabs-{}px.png".format(width)))
    finally:
        context.close()


def compare_state(page):
    """What the compare page shows: per step, the framework of each visible cell in each column."""
    return page.evaluate("""() => [...document.querySelectorAll('.rosetta-compare-step')].map(step => {
        const visible = e => e.offsetParent !== null && e.getBoundingClientRect().height > 0;
        const side = s => [...step.querySelectorAll('.rosetta-compare-col.side-' + s + ' > .rosetta-compare-cell')]
            .filter(visible).map(c => [...c.classList].find(k => k.startsWith('fw-')).slice(3) + ':' + c.textContent.trim().length);
        const aligned = [...step.querySelectorAll('table.rosetta-aligned')].filter(visible);
        return {from: side('from'), to: side('to'), aligned: aligned.map(t => t.dataset.pair),
                alignedEmptyRows: aligned.flatMap(t => [...t.rows]).filter(r => !r.textContent.trim()).length};
    })""")


def test_compare_view_fills_both_columns_for_every_ordered_pair(site, page):
    page.goto(site + "compare.html")
    steps = compare_state(page)
    assert len(steps) == len(STEPS)
    for a in KEYS:
        for b in KEYS:
            if a == b:
                continue
            page.select_option('.rosetta-compare select[name="from"]', a)
            page.select_option('.rosetta-compare select[name="to"]', b)
            assert page.url.endswith("?from={}&to={}".format(a, b))
            for step, shown in zip(STEPS, compare_state(page)):
                for side, key in (("from", a), ("to", b)):
                    cells = shown[side]
                    # Every cell of the column is that framework's, none empty, and there is code.
                    assert cells and all(c.split(":")[0] == key and int(c.split(":")[1]) > 20 for c in cells), \
                        (a, b, step, side, cells)
                assert shown["alignedEmptyRows"] == 0, (a, b, step)
    assert page.context.outside == [] and page.errors == []


def test_part_twos_compare_view_shows_every_framework_on_either_side(site, page):
    """Each framework once on the left and once on the right (its neighbour in the picker's order),
    at 375 and 1280 px."""
    sys.path.insert(0, os.path.join(ROOT, "book", "_ext"))
    import framework_tabs
    steps = [s["title"] for s in framework_tabs.steps("rnn")]
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for a, b in zip(KEYS, KEYS[1:] + KEYS[:1]):
            page.goto(site + "rnn-compare.html?from={}&to={}".format(a, b))
            shown = compare_state(page)
            assert len(shown) == len(steps)
            for step, cells in zip(steps, shown):
                for side, key in (("from", a), ("to", b)):
                    assert cells[side] and all(c.split(":")[0] == key and int(c.split(":")[1]) > 20
                                               for c in cells[side]), (a, b, step, side, cells[side])
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"), (width, a, b)
        page.screenshot(path=os.path.join(ARTIFACTS, "rnn-compare-{}px.png".format(width)))
    assert page.context.outside == [] and page.errors == []


def test_compare_view_opens_the_pair_in_the_url_and_aligns_the_model_line_by_line(site, page):
    page.goto(site + "compare.html?from=pytorch&to=mxnet")
    assert page.evaluate("[...document.querySelectorAll('.rosetta-compare select')].map(s => s.value)") == ["pytorch", "mxnet"]
    model = compare_state(page)[1]
    assert model["aligned"] == ["pytorch mxnet"]  # both build the model layer by layer
    rows = page.locator("table.rosetta-aligned:visible tr")
    texts = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    conv_rows = [t for t in texts if "nn.Conv2d(" in t[0]]
    assert len(conv_rows) == 4 and all("Conv2D" in t[1] for t in conv_rows)
    page.click(".rosetta-compare-swap")
    assert page.url.endswith("?from=mxnet&to=pytorch") and compare_state(page)[1]["aligned"] == ["mxnet pytorch"]
    page.goto(site + "compare.html?from=jax&to=tensorflow")  # built in a class: function by function
    assert compare_state(page)[1]["aligned"] == []
    assert page.context.outside == [] and page.errors == []


def test_every_tab_links_to_its_program_and_to_the_compare_view(site, page):
    page.goto(site + "04-train.html?framework=" + KEYS[2])
    links = page.locator(".sd-tab-set > input:checked + label + .sd-tab-content .rosetta-tab-links a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    module = common.FRAMEWORKS[[n for n in common.implemented_frameworks() if common.tab(n) == KEYS[2]][0]]["module"]
    assert [h.rsplit("/", 1)[-1] for h in hrefs] == [module + ".py", module + ".ipynb", "compare.html?from=" + KEYS[2]]
    for href in hrefs[:2]:
        response = page.request.get(page.url.rsplit("/", 1)[0] + "/" + href)
        assert response.ok and "def create_model" in response.text()
    links.nth(2).click()
    page.wait_for_url("**/compare.html?*to=*")
    assert "from={}&".format(KEYS[2]) in page.url
    assert compare_state(page)[0]["from"][0].startswith(KEYS[2] + ":")


@pytest.mark.parametrize("width", [375, 1280])
def test_compare_view_fits_any_screen(browser, site, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for a, b in [("pytorch", "mxnet"), ("jax", "caffe2"), ("cntk", "keras")]:
            page.goto(site + "compare.html?from={}&to={}".format(a, b))
            fits = page.evaluate("""() => {
                const vw = document.documentElement.clientWidth;
                const from = document.querySelector('.rosetta-compare-notes .side-from').getBoundingClientRect();
                const to = document.querySelector('.rosetta-compare-notes .side-to').getBoundingClientRect();
                return {pageScrolls: document.documentElement.scrollWidth > vw + 1,
                        stacked: to.top >= from.bottom - 1, sideBySide: Math.abs(to.top - from.top) < 2 && to.left >= from.right};
            }""")
            assert not fits["pageScrolls"], (width, a, b)
            assert fits["stacked"] if width < 700 else fits["sideBySide"], (width, a, b, fits)
        page.locator("table.rosetta-aligned:visible").first.scroll_into_view_if_needed()
        page.screenshot(path=os.path.join(ARTIFACTS, "compare-{}px.png".format(width)))
    finally:
        context.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_every_measured_table_fits_its_column(browser, site, width):
    """No table wider than the column it is in (nothing hidden behind a sideways scroll), at a
    phone's width and a laptop's, on every page that has measured tables."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for name in ("results", "fast", "defaults", "07-weights", "08-export", "09-scale-out", "rnn"):
            page.goto(site + name + ".html")
            found = page.evaluate("""() => {
                const vw = document.documentElement.clientWidth;
                const tables = [...document.querySelectorAll('table.rosetta-results')];
                return {tables: tables.length, pageScrolls: document.documentElement.scrollWidth > vw + 1,
                        tooWide: tables.filter(t => t.getBoundingClientRect().width > t.parentElement.clientWidth + 1
                                               || t.getBoundingClientRect().right > vw + 1)
                                       .map(t => t.className + ' ' + Math.round(t.getBoundingClientRect().width)
                                                 + '>' + t.parentElement.clientWidth)};
            }""")
            assert found["tables"] > 0 and found["tooWide"] == [] and not found["pageScrolls"], (width, name, found)
            page.screenshot(path=os.path.join(ARTIFACTS, "{}-{}px.png".format(name, width)), full_page=True)
    finally:
        context.close()


def test_the_defaults_table_shows_pytorch_beside_the_picked_framework_and_any_other_in_a_click(site, page):
    def shown():
        return page.evaluate("""() => [...document.querySelectorAll('.rosetta-defaults thead th[data-tab]')]
            .filter(th => th.offsetParent !== null).map(th => th.dataset.tab)""")
    page.goto(site + "defaults.html?framework=jax")
    assert shown() == ["pytorch", "jax"]
    page.click(".rosetta-defaults-pick button[data-tab='mxnet']")
    assert shown() == ["pytorch", "mxnet"]
    page.goto(site + "defaults.html?framework=pytorch")
    assert shown() == ["pytorch", "tensorflow"]
    assert page.context.outside == [] and page.errors == []


@pytest.mark.parametrize("width", [375, 1280])
def test_every_chart_fits_its_column(browser, site, width):
    """No chart wider than its column, at a phone's width and a laptop's: a wide one is drawn smaller."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for name in ("results", "fast", "08-export"):
            page.goto(site + name + ".html")
            page.wait_for_selector(".rosetta-chart svg")
            found = page.evaluate("""() => {
                const vw = document.documentElement.clientWidth;
                const charts = [...document.querySelectorAll('.rosetta-chart')];
                return {charts: charts.length, drawn: charts.filter(c => c.querySelector('svg')).length,
                        pageScrolls: document.documentElement.scrollWidth > vw + 1,
                        tooWide: charts.map(c => [c.id, c.querySelector('svg'), c.parentElement.clientWidth])
                                       .filter(([id, svg, room]) => svg && (svg.getBoundingClientRect().width > room + 1
                                                                            || svg.getBoundingClientRect().right > vw + 1))
                                       .map(([id, svg, room]) => id + ' ' + Math.round(svg.getBoundingClientRect().width) + '>' + room)};
            }""")
            assert found["charts"] > 0 and found["drawn"] == found["charts"], (width, name, found)
            assert found["tooWide"] == [] and not found["pageScrolls"], (width, name, found)
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280])
def test_no_table_header_breaks_inside_a_word(browser, site, width):
    """A header wraps between its words (or at a hyphen) or not at all ("statu s" once read as two words)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for name in ("results", "fast", "07-weights", "08-export", "09-scale-out"):
            page.goto(site + name + ".html")
            broken = page.evaluate("""() => {
                const out = [];
                for (const th of document.querySelectorAll('table.rosetta-results th')) {
                    for (const word of th.textContent.split(/[\\s-]+/).filter(w => w)) {  // a hyphen may break
                        const range = document.createRange(), node = th.firstChild;
                        if (!node || node.nodeType !== 3) continue;
                        const at = node.textContent.indexOf(word);
                        range.setStart(node, at); range.setEnd(node, at + word.length);
                        if (range.getClientRects().length > 1) out.push(th.textContent);
                    }
                }
                return out;
            }""")
            assert broken == [], (name, broken)
    finally:
        context.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_sidebar_button_shows_and_hides_the_parts(browser, site, width):
    """The visible button of the article's header opens the left column on a phone (a dialog) and
    hides and shows it on a wide screen; its captions are the book's parts."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(site + "intro.html")
        state = """() => {
            const modal = document.getElementById('pst-primary-sidebar-modal');
            const inline = document.getElementById('pst-primary-sidebar');
            const shown = e => e && e.getBoundingClientRect().width > 0 && getComputedStyle(e).visibility !== 'hidden';
            const where = modal.open ? modal : inline;
            return {open: modal.open || shown(inline),
                    captions: [...where.querySelectorAll('p.caption')].filter(shown).map(c => c.textContent.trim())};
        }"""
        before = page.evaluate(state)
        page.locator("button.primary-toggle:visible").first.click()
        page.wait_for_timeout(500)
        after = page.evaluate(state)
        page.screenshot(path=os.path.join(ARTIFACTS, "sidebar-{}px.png".format(width)))
        assert before["open"] == (width >= 992) and after["open"] == (width < 992), (before, after)
        shown = (after if width < 992 else before)["captions"]
        assert shown[:2] == ["Part I: the CNN, step by step", "What the CNN shows further"], shown
    finally:
        context.close()
