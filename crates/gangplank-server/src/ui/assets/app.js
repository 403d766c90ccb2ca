// Gangplank's dashboard script: live refresh of an environment's deployment history through
// server-sent events. Pages work without it; it only saves a reload.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch) {
    return;
  }
  var target = document.getElementById("history");
  var status = document.getElementById("live-status");
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(live.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        target.innerHTML = html;
      })
      .catch(function () {
        status.textContent = "(refresh failed; reload the page)";
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  // The history's buttons (roll back, redeploy) post in the background, so the page stays and
  // the new deployment shows up in place; without this script they post as plain forms.
  target.addEventListener("submit", function (event) {
    var form = event.target;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) {
      button.disabled = true;
    }
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      if (response.type !== "opaqueredirect" && !response.ok) {
        status.textContent = "· refused (" + response.status + ")";
      }
      refresh();
    }, function () {
      status.textContent = "· the request failed";
      refresh();
    });
  });

  var source = new EventSource(live.dataset.events);
  source.addEventListener("open", function () {
    status.textContent = "· live";
    // Whatever changed while the stream was down is shown now.
    refresh();
  });
  source.addEventListener("deployment", refresh);
  source.addEventListener("resync", refresh);
  source.addEventListener("error", function () {
    status.textContent = "· reconnecting";
  });
})();
