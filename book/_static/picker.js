// One framework picker, at the top of every page. It drives every tab set of the book's sync
// group through sphinx-design's own mechanism (the group's radio inputs and its stored choice),
// shows the current choice, and keeps it in the URL: sphinx-design reads `?framework=jax` on
// load, so a link with it opens the book on that framework.
(function () {
  "use strict";
  const GROUP = "framework";
  const KEY = "sphinx-design-tab-id-" + GROUP; // design-tabs.js's default storage prefix

  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function store(id) {
    try { window.localStorage.setItem(KEY, id); } catch (e) { /* no storage: the URL still works */ }
  }

  function putInUrl(id) {
    const url = new URL(window.location.href);
    url.searchParams.set(GROUP, id);
    window.history.replaceState(window.history.state, "", url);
  }

  function labels(id) {
    return document.querySelectorAll(
      '.sd-tab-label[data-sync-group="' + GROUP + '"][data-sync-id="' + id + '"]');
  }

  function choose(id, picker) {
    labels(id).forEach(function (label) {
      const input = document.getElementById(label.getAttribute("for"));
      if (input) input.checked = true;
    });
    store(id);
    putInUrl(id);
    picker.value = id;
    showDefaults(id);
  }

  // The defaults chapter's table has a column per framework, too many for a page: it shows
  // PyTorch beside the framework picked (TensorFlow where that is PyTorch), and a button for each.
  function showDefaults(id) {
    document.querySelectorAll(".rosetta-defaults").forEach(function (table) {
      const tabs = Array.from(table.querySelectorAll("thead th[data-tab]")).map(function (th) {
        return th.getAttribute("data-tab");
      });
      const other = tabs.indexOf(id) >= 0 && id !== "pytorch" ? id : tabs.find(function (t) { return t !== "pytorch"; });
      table.querySelectorAll("[data-tab]").forEach(function (cell) {
        const tab = cell.getAttribute("data-tab");
        cell.hidden = tab !== "pytorch" && tab !== other;
      });
      const pick = table.previousElementSibling;
      if (pick && pick.classList.contains("rosetta-defaults-pick")) {
        pick.hidden = false;
        pick.querySelectorAll("button").forEach(function (button) {
          button.setAttribute("aria-pressed", String(button.getAttribute("data-tab") === other));
        });
      }
    });
  }

  function wireDefaults() {
    document.querySelectorAll(".rosetta-defaults-pick button").forEach(function (button) {
      button.addEventListener("click", function () { showDefaults(button.getAttribute("data-tab")); });
    });
  }

  function build() {
    wireDefaults();
    showDefaults(stored() || "pytorch");
    const frameworks = window.ROSETTA_FRAMEWORKS || [];
    if (!frameworks.length) return;
    const box = document.createElement("label");
    box.className = "rosetta-picker";
    const text = document.createElement("span");
    text.className = "rosetta-picker-text";
    text.textContent = "Framework";
    box.appendChild(text);
    const picker = document.createElement("select");
    picker.id = "rosetta-picker";
    picker.setAttribute("aria-label", "The framework every tab shows");
    frameworks.forEach(function (pair) {
      const option = document.createElement("option");
      option.value = pair[0];
      option.textContent = pair[1];
      picker.appendChild(option);
    });
    box.appendChild(picker);
    const place = document.querySelector(".header-article-items__start") || document.querySelector("main");
    place.appendChild(box);  // after the sidebar toggle, where the theme has one

    const known = frameworks.map(function (pair) { return pair[0]; });
    const asked = new URLSearchParams(window.location.search).get(GROUP);
    const current = [asked, stored()].find(function (id) { return known.indexOf(id) >= 0; });
    if (current) {
      choose(current, picker);
    } else {
      picker.value = known[0]; // sphinx-design shows each tab set's first tab
    }
    picker.addEventListener("change", function () { choose(picker.value, picker); });
    // A tab clicked on the page changes the choice too: the picker and the URL follow it.
    document.addEventListener("change", function (event) {
      const label = event.target && event.target.nextElementSibling;
      if (label && label.getAttribute("data-sync-group") === GROUP && event.target.checked) {
        picker.value = label.getAttribute("data-sync-id");
        putInUrl(picker.value);
        showDefaults(picker.value);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", build);
})();
