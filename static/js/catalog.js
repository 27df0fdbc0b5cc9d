// Catalog pages: small enhancements; every form works without this file.
(function () {
  "use strict";
  // Rejecting a model is final: ask first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-testid=reject]");
    if (button && !window.confirm("Reject this model version? A rejected model cannot be approved later.")) {
      event.preventDefault();
    }
  });
  // Where a rule blocks approval, open the break-glass box once the admin types a reason.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector(".break-glass-box[data-break-glass-needed]");
    if (box) box.classList.add("break-glass-needed");
  });
})();
