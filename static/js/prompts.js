// Prompt pages: show the template or the messages field by kind, and list the
// {{ variables }} found as the author types. The form works without this file.
(function () {
  "use strict";
  var PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

  function setup(form) {
    var kindInputs = form.querySelectorAll("input[name=kind]");
    var templateBox = form.querySelector("[data-field=template]");
    var messagesBox = form.querySelector("[data-field=messages]");
    var preview = form.querySelector("[data-variables-preview]");

    function kind() {
      for (var i = 0; i < kindInputs.length; i++) {
        if (kindInputs[i].checked) return kindInputs[i].value;
      }
      return "template";
    }

    function toggle() {
      var chat = kind() === "messages";
      if (templateBox) templateBox.hidden = chat;
      if (messagesBox) messagesBox.hidden = !chat;
      refresh();
    }

    function refresh() {
      if (!preview) return;
      var source = form.querySelector(kind() === "messages" ? "#id_messages" : "#id_template");
      var text = source ? source.value : "";
      var seen = [];
      var match;
      PLACEHOLDER.lastIndex = 0;
      while ((match = PLACEHOLDER.exec(text)) !== null) {
        if (seen.indexOf(match[1]) === -1) seen.push(match[1]);
      }
      preview.textContent = seen.length ? seen.join(", ") : "none";
    }

    for (var i = 0; i < kindInputs.length; i++) kindInputs[i].addEventListener("change", toggle);
    form.addEventListener("input", function (event) {
      if (event.target.hasAttribute("data-variables-source")) refresh();
    });
    toggle();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("[data-prompt-form]");
    for (var i = 0; i < forms.length; i++) setup(forms[i]);
  });
})();
