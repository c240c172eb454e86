// Live run view: poll the run's JSON endpoint and swap in the new HTML while the run moves.
// Pages work without this script; they just do not update by themselves.
"use strict";
document.querySelectorAll("[data-live-url]").forEach(function (box) {
  function tick() {
    if (box.dataset.done === "true") return;
    fetch(box.dataset.liveUrl, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d && d.version !== box.dataset.version) {
          box.innerHTML = d.html;
          box.dataset.version = d.version;
          box.dataset.state = d.state;
        }
        if (d) box.dataset.done = d.done ? "true" : "false";
        var badge = document.getElementById("open-prompts");
        if (d && badge && typeof d.open_prompts === "number") {
          badge.textContent = String(d.open_prompts);
          badge.hidden = d.open_prompts === 0;
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, 1000); });
  }
  setTimeout(tick, 1000);
});
