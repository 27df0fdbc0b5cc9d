// The reviewer screen, keyboard first: number keys choose options, y/n answer yes/no
// questions, Ctrl+Enter submits (htmx swaps in the next item), s skips, m toggles the raw
// output, ? shows the key map. Focus moves to the next question after each answer.
(function () {
  "use strict";
  // Under this CSP a style attribute never applies, and htmx copying one (Chromium's
  // autofill leaves style="" on inputs) between same-id elements is reported as a violation.
  if (window.htmx) window.htmx.config.attributesToSettle = ["class", "width", "height"];

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
  function focusQuestion(q) {
    if (!q) {
      var submit = document.getElementById("submit-review");
      if (submit) submit.focus();
      return;
    }
    var target = q.querySelector("input:checked") || q.querySelector("input, textarea");
    if (target) target.focus();
  }
  function currentQuestion() {
    var active = document.activeElement;
    var q = active && active.closest ? active.closest("fieldset.question[data-question]") : null;
    if (q && form() && form().contains(q)) return q;
    var list = questions();
    for (var i = 0; i < list.length; i++) {
      if (list[i].dataset.type !== "text" && !answered(list[i])) return list[i];
    }
    return list[0] || null;
  }
  function nextQuestion(q) {
    var list = questions();
    var start = list.indexOf(q) + 1;
    for (var i = start; i < list.length; i++) {
      if (list[i].dataset.type !== "text" && !answered(list[i])) return list[i];
    }
    return null;
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
      focusQuestion(nextQuestion(q));
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
      el.blur();
      focusQuestion(currentQuestion());
      return;
    }
    if (isTextField(el) || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (key === "Enter" && el && (el.type === "radio" || el.type === "checkbox")) {
      // Enter on an option moves on instead of submitting the form half-answered.
      event.preventDefault();
      var here = el.closest("fieldset.question");
      var list = questions();
      var after = list.slice(list.indexOf(here) + 1).filter(function (q) { return q.dataset.type !== "text"; })[0];
      focusQuestion(after || null);
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
    } else if (/^[0-9]$/.test(key) && form()) {
      if (choose(currentQuestion(), key)) event.preventDefault();
    } else if ((key === "y" || key === "n") && form()) {
      var q = currentQuestion();
      if (!q || q.dataset.type !== "boolean") {
        q = questions().filter(function (x) { return x.dataset.type === "boolean" && !answered(x); })[0] || null;
      }
      if (choose(q, key)) event.preventDefault();
    }
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
    var error = document.getElementById("review-error");
    if (error) {
      var bad = questions().filter(function (q) { return q.dataset.type !== "text" && q.getAttribute("aria-required") && !answered(q); })[0];
      focusQuestion(bad || currentQuestion());
    } else if (form()) {
      focusQuestion(currentQuestion());
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
