// Incident page enhancements; the page works without this file.
(function () {
  "use strict";
  function sync(select) {
    var form = select.form;
    var value = select.value;
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for").split(" ").indexOf(value) === -1;
    });
    // Ending an incident as a false alarm or a duplicate asks first (app.js reads data-confirm).
    var confirmFor = (form.getAttribute("data-confirm-for") || "").split(" ");
    if (confirmFor.indexOf(value) !== -1) {
      form.setAttribute("data-confirm", "Mark this incident " + value + "? It ends the incident.");
    } else {
      form.removeAttribute("data-confirm");
    }
  }
  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-transition-select")) {
      sync(event.target);
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-transition-select]").forEach(sync);
  });
})();
