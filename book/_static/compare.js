// The compare page (book/_ext/compare.py): every framework's cells are in the page, and this
// shows the chosen pair, "from" in the left column and "to" in the right. The pair lives in the
// URL (?from=pytorch&to=jax), so a link opens the same comparison.
(function () {
  "use strict";

  function show(root, from, to) {
    root.querySelectorAll(".rosetta-compare-col").forEach(function (col) {
      const key = col.classList.contains("side-from") ? from : to;
      col.querySelectorAll(":scope > .rosetta-compare-cell").forEach(function (cell) {
        cell.hidden = !cell.classList.contains("fw-" + key);
      });
    });
    // A function neither framework has is left out; the model's lines are aligned where both
    // build it layer by layer, and then the aligned table takes the place of the two functions.
    root.querySelectorAll(".rosetta-compare-code").forEach(function (row) {
      row.hidden = !(row.classList.contains("has-" + from) || row.classList.contains("has-" + to));
    });
    root.querySelectorAll(".rosetta-compare-aligned").forEach(function (box) {
      let found = null;
      box.querySelectorAll("table").forEach(function (table) {
        const match = table.dataset.pair === from + " " + to;
        table.hidden = !match;
        if (match) found = table;
      });
      box.hidden = !found;
      const row = box.previousElementSibling;
      if (row && found) row.hidden = true;
    });
  }

  function init() {
    const root = document.querySelector(".rosetta-compare");
    if (!root) return;
    const pickFrom = root.querySelector('select[name="from"]');
    const pickTo = root.querySelector('select[name="to"]');
    const keys = Array.from(pickFrom.options).map(function (o) { return o.value; });
    const params = new URLSearchParams(window.location.search);
    let stored = null;
    try { stored = window.localStorage.getItem("sphinx-design-tab-id-framework"); } catch (e) { /* none */ }
    const from = [params.get("from"), stored, keys[0]].find(function (k) { return keys.indexOf(k) >= 0; });
    const to = [params.get("to"), keys.find(function (k) { return k !== from; })]
      .find(function (k) { return keys.indexOf(k) >= 0; });
    pickFrom.value = from;
    pickTo.value = to;

    function update() {
      show(root, pickFrom.value, pickTo.value);
      const url = new URL(window.location.href);
      url.searchParams.set("from", pickFrom.value);
      url.searchParams.set("to", pickTo.value);
      window.history.replaceState(window.history.state, "", url);
    }
    pickFrom.addEventListener("change", update);
    pickTo.addEventListener("change", update);
    root.querySelector(".rosetta-compare-swap").addEventListener("click", function () {
      const was = pickFrom.value;
      pickFrom.value = pickTo.value;
      pickTo.value = was;
      update();
    });
    update();
    root.classList.add("rosetta-compare-ready");
  }

  document.addEventListener("DOMContentLoaded", init);
})();
