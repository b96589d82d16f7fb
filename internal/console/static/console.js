// Switchyard console: live updates over SSE. Every page works without this
// file; it only keeps numbers and tokens fresh.
"use strict";
(function () {
  // The overview: the server renders the new body after every sample.
  var ov = document.getElementById("overview");
  if (ov && window.EventSource) {
    var es = new EventSource(ov.dataset.live);
    es.addEventListener("overview", function (e) { ov.innerHTML = e.data; });
  }
  // A running job: its tokens as they are made, then a reload for the result.
  var note = document.getElementById("live-note");
  var text = document.getElementById("live-text");
  if (note && text && window.EventSource) {
    text.textContent = "";
    var js = new EventSource(note.dataset.live);
    var attempt = 0;
    js.onmessage = function () {};
    ["chunk", "partial"].forEach(function (t) {
      js.addEventListener(t, function (e) {
        var ev = JSON.parse(e.data);
        if (ev.attempt !== attempt) { attempt = ev.attempt; text.textContent = ""; }
        if (ev.delta) { text.textContent += ev.delta; }
      });
    });
    js.addEventListener("restart", function () { text.textContent = ""; });
    js.addEventListener("result", function () { js.close(); window.location.reload(); });
  }
})();
