// The reviewer screen, keyboard first: number keys choose options, y/n answer yes/no
// questions, Ctrl+Enter submits (htmx swaps in the next item), s skips, m toggles the raw
// output, ? shows the key map.
//
// One question is active at a time: the one holding focus (or that held it last, when a
// click on the page moved focus nowhere). It is highlighted, and the hint above the rubric
// names it; every key goes to it and to no other question. After a single answer
// (yes/no, choice, scale) the next REQUIRED question that is still open becomes active:
// optional questions are never entered on their own, so a digit meant for the next required
// question cannot tick an optional checkbox. Tab, Shift+Tab or a click enter an optional
// question; Enter on an option goes to the next question in order; Esc leaves a text answer.
(function () {
  "use strict";
  // Under this CSP a style attribute never applies, and htmx copying one (Chromium's
  // autofill leaves style="" on inputs) between same-id elements is reported as a violation.
  if (window.htmx) window.htmx.config.attributesToSettle = ["class", "width", "height"];

  var active = null; // the active question (fieldset), see above

  function screen() { return document.getElementById("review-screen"); }
  function form() { return document.getElementById("review-form"); }
  function questions() {
    var f = form();
    return f ? Array.prototype.slice.call(f.querySelectorAll("fieldset.question[data-question]")) : [];
  }
  function answered(q) {
    if (q.dataset.type === "text") {
      var t = q.querySelector("textarea");
      return t && t.value.trim() !== "";
    }
    return q.querySelector("input:checked") !== null;
  }
  function required(q) { return q.getAttribute("aria-required") === "true"; }
  function questionOf(el) {
    var q = el && el.closest ? el.closest("fieldset.question[data-question]") : null;
    return q && form() && form().contains(q) ? q : null;
  }
  function setActive(q) {
    if (q === active) return;
    if (active) {
      active.classList.remove("active");
      active.removeAttribute("data-active");
    }
    active = q;
    if (q) {
      q.classList.add("active");
      q.setAttribute("data-active", "true");
    }
    var hint = document.getElementById("key-target");
    if (hint) {
      hint.textContent = "";
      if (q) {
        var label = document.createElement("strong");
        label.textContent = q.dataset.label || q.dataset.question;
        hint.append(q.dataset.type === "text" ? "Typing into: " : "Keys answer: ", label);
      } else {
        hint.textContent = "Keys answer no question: Tab or Shift+Tab to one.";
      }
    }
  }
  function activeQuestion() {
    if (active && !(form() && form().contains(active))) setActive(null); // swapped away
    return active;
  }
  function focusQuestion(q) {
    if (!q) {
      var submit = document.getElementById("submit-review");
      if (submit) submit.focus();
      setActive(null);
      return;
    }
    var target = q.querySelector("input:checked") || q.querySelector("input, textarea");
    if (target) target.focus();
    setActive(q);
  }
  // The next required question still open after `q` (then from the top), or null.
  function nextRequired(q) {
    var list = questions();
    var at = list.indexOf(q);
    var order = list.slice(at + 1).concat(list.slice(0, at < 0 ? 0 : at));
    for (var i = 0; i < order.length; i++) {
      if (required(order[i]) && !answered(order[i])) return order[i];
    }
    return null;
  }
  function firstQuestion() {
    var list = questions();
    return nextRequired(null) || list.filter(function (q) { return !answered(q); })[0] || list[0] || null;
  }
  function choose(q, key) {
    if (!q || q.dataset.type === "text") return false;
    var input = q.querySelector('input[data-key="' + key + '"]');
    if (!input) return false;
    if (input.type === "checkbox") {
      input.checked = !input.checked;
      input.focus();
    } else {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      focusQuestion(nextRequired(q));
    }
    return true;
  }
  function announce(text) {
    var region = document.getElementById("review-announce");
    if (region) {
      region.textContent = "";
      window.setTimeout(function () { region.textContent = text; }, 50);
    }
  }
  function openDialog(id, focusSelector) {
    var dialog = document.getElementById(id);
    if (!dialog || dialog.open) return;
    dialog.showModal();
    var target = focusSelector ? dialog.querySelector(focusSelector) : null;
    if (target) target.focus();
  }
  function toggleRaw() {
    var md = document.getElementById("out-md");
    var raw = document.getElementById("out-raw");
    var button = document.querySelector("[data-toggle-raw]");
    if (!md || !raw) return;
    var showRaw = raw.hidden;
    raw.hidden = !showRaw;
    md.hidden = showRaw;
    if (button) button.setAttribute("aria-pressed", showRaw ? "true" : "false");
    announce(showRaw ? "Showing raw output" : "Showing rendered output");
  }
  function isTextField(el) {
    if (!el) return false;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable) return true;
    return el.tagName === "INPUT" && ["radio", "checkbox", "submit", "button"].indexOf(el.type) < 0;
  }

  document.addEventListener("keydown", function (event) {
    if (!screen()) return;
    var el = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var f = el && el.closest ? el.closest("form") : null;
      if (!f || !f.closest("#review-screen")) f = form();
      if (f) {
        event.preventDefault();
        f.requestSubmit();
      }
      return;
    }
    if (document.querySelector("dialog[open]")) return; // dialogs handle their own keys
    if (event.key === "Escape" && isTextField(el)) {
      var left = questionOf(el);
      el.blur();
      focusQuestion(left ? nextRequired(left) : firstQuestion());
      return;
    }
    if (isTextField(el) || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (key === "Enter" && el && (el.type === "radio" || el.type === "checkbox")) {
      // Enter on an option moves on instead of submitting the form half-answered.
      event.preventDefault();
      var list = questions();
      focusQuestion(list[list.indexOf(questionOf(el)) + 1] || null);
      return;
    }
    if (key === "?") {
      event.preventDefault();
      openDialog("keymap", "button");
    } else if (key === "s" && form()) {
      event.preventDefault();
      openDialog("skip-dialog", "#skip-reason");
    } else if (key === "m") {
      event.preventDefault();
      toggleRaw();
    } else if ((/^[0-9]$/.test(key) || key === "y" || key === "n") && form()) {
      // Only ever the active question: with none active the key does nothing. A text
      // question that lost focus to a click on the page gets it back, and the key with it.
      var q = activeQuestion();
      if (q && q.dataset.type === "text") {
        var box = q.querySelector("textarea");
        if (box) box.focus();
      } else if (choose(q, key)) {
        event.preventDefault();
      }
    }
  });

  // Focus decides the active question: entering a question makes it active, moving to any
  // other control (submit, comment, a button, a link) leaves none active; focus lost to the
  // page itself (a click on text, a scrolled panel) keeps the active question.
  var CONTROLS = "input, textarea, select, button, a[href], summary, [contenteditable]";
  document.addEventListener("focusin", function (event) {
    if (!form()) return;
    var q = questionOf(event.target);
    if (q) setActive(q);
    else if (event.target.matches && event.target.matches(CONTROLS)) setActive(null);
  });

  document.addEventListener("click", function (event) {
    var t = event.target.closest ? event.target : null;
    if (!t) return;
    if (t.closest("[data-toggle-raw]")) toggleRaw();
    else if (t.closest("[data-open-keymap]")) openDialog("keymap", "button");
    else if (t.closest("[data-open-skip]")) openDialog("skip-dialog", "#skip-reason");
    else if (t.closest("[data-close-dialog]")) t.closest("dialog").close();
  });

  // Lease countdown.
  function tick() {
    var lease = document.querySelector("#review-screen [data-lease-expires]");
    if (!lease) return;
    var left = Math.round((Date.parse(lease.getAttribute("data-lease-expires")) - Date.now()) / 1000);
    if (isNaN(left)) return;
    if (left <= 0) {
      lease.textContent = "expired: submit soon, someone else may take it";
      lease.classList.add("expired");
      return;
    }
    var m = Math.floor(left / 60), s = left % 60;
    lease.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    lease.classList.toggle("expiring", left < 60);
  }
  window.setInterval(tick, 1000);

  function ready() {
    var s = screen();
    if (!s) return;
    document.documentElement.setAttribute("data-reviews-ready", s.getAttribute("data-item") || "");
    tick();
    active = null;
    if (form()) {
      focusQuestion(firstQuestion()); // after an error too: the first required one missing
    } else {
      var next = document.getElementById("next-item");
      if (next) next.focus();
    }
    announce(s.getAttribute("data-announce") || "");
  }

  document.addEventListener("htmx:afterSettle", function () {
    if (screen()) {
      var dialog = document.querySelector("dialog[open]");
      if (dialog) dialog.close();
      ready();
    }
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
