// Keeps a session's page live: follows the session's event stream (the
// same events as GET /v1/sessions/{id}/events) and, when something
// happened, reads the page's live part again from the server, which
// renders it with every value escaped. No other script runs on the pages.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.EventSource) return;
  var waiting = false;
  var again = false;
  function refresh() {
    if (waiting) { again = true; return; }
    waiting = true;
    fetch(root.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { root.innerHTML = html; root.dataset.updated = String(Date.now()); })
      .catch(function () { /* the next event tries again */ })
      .then(function () { waiting = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource(root.dataset.events);
  events.addEventListener("activity", refresh);
  events.addEventListener("state", refresh);
  events.addEventListener("end", function () { events.close(); refresh(); });
  events.addEventListener("open", function () { root.dataset.following = "yes"; });
})();
