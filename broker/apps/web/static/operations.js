// Operations page: refresh the figures every few seconds (same filters), no full reload.
(function () {
  "use strict";
  var box = document.getElementById("live");
  var stateEl = document.getElementById("live-state");
  var src = box.getAttribute("data-src");
  function refresh() {
    fetch(src, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected || response.status === 401) { window.location.href = "/login"; return null; }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        stateEl.setAttribute("data-state", "live");
      })
      .catch(function () { stateEl.setAttribute("data-state", "offline"); });
  }
  stateEl.setAttribute("data-state", "live");
  window.setInterval(refresh, 3000);
})();
