// Inbox: following an unread notification's link also marks it read. Without this file
// the "Mark read" button does the same.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-mark-read]");
    if (!link || !navigator.sendBeacon) return;
    var item = link.closest("[data-testid=notification]");
    var token = item && item.querySelector("input[name=csrfmiddlewaretoken]");
    if (!token) return;
    var body = new FormData();
    body.append("csrfmiddlewaretoken", token.value);
    navigator.sendBeacon(link.getAttribute("data-mark-read"), body);
  });
})();
