// Keeps a session's page live: follows the session's event stream (the
// same events as GET /v1/sessions/{id}/events) and, when something
// happened, reads the page's live part again from the server, which
// renders it with every value escaped. No other script runs on the pages.
//
// A hidden tab closes its stream (a browser keeps six connections per
// host, and each open stream holds one) and catches up when shown again.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.EventSource) return;
  var waiting = false;
  var again = false;
  var events = null;
  var ended = false;
  function refresh() {
    if (waiting) { again = true; return; }
    waiting = true;
    fetch(root.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        // Signed out meanwhile: the whole page goes to the sign-in.
        if (r.redirected || r.status === 401) { window.location.reload(); return Promise.reject(0); }
        return r.ok ? r.text() : Promise.reject(r.status);
      })
      .then(function (html) { root.innerHTML = html; root.dataset.updated = String(Date.now()); })
      .catch(function () { /* the next event tries again */ })
      .then(function () { waiting = false; if (again) { again = false; refresh(); } });
  }
  function open() {
    if (events || ended) return;
    events = new EventSource(root.dataset.events);
    events.addEventListener("activity", refresh);
    events.addEventListener("state", refresh);
    events.addEventListener("end", function () { ended = true; close(); refresh(); });
    events.addEventListener("open", function () { root.dataset.following = "yes"; });
  }
  function close() {
    if (events) { events.close(); events = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { close(); } else if (!ended) { refresh(); open(); }
  });
  if (!document.hidden) open();
})();
