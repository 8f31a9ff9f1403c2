// The detail page's live progress: each list with a data-stream address follows that
// server-sent event stream, appending each progress line as plain text. At the end it shows
// the final state and asks htmx to reload the history (the "detail-changed" event its
// section listens for). A list that htmx swaps out closes its stream.
(function () {
  "use strict";
  var STREAM = "data-stream";
  var opened = new WeakMap();

  function appendLine(list, line) {
    var item = document.createElement("li");
    var at = document.createElement("span");
    at.className = "meta";
    at.textContent = line.at;
    item.appendChild(at);
    item.appendChild(document.createTextNode(" " + line.message));
    list.appendChild(item);
  }

  function showEnd(list, end) {
    var state = document.getElementById(list.getAttribute("data-state"));
    if (state) {
      state.textContent = end.result + (end.message ? ": " + end.message : "");
    }
    document.body.dispatchEvent(new CustomEvent("detail-changed"));
  }

  function follow(list) {
    if (opened.has(list)) {
      return;
    }
    var source = new EventSource(list.getAttribute(STREAM));
    opened.set(list, source);
    source.addEventListener("line", function (event) {
      appendLine(list, JSON.parse(event.data));
      // A line means the operation runs: the page may have been drawn while it waited.
      var state = document.getElementById(list.getAttribute("data-state"));
      if (state && state.textContent.trim() === "pending") {
        state.textContent = "running";
      }
    });
    source.addEventListener("end", function (event) {
      source.close();
      showEnd(list, JSON.parse(event.data));
    });
  }

  function followWithin(root) {
    if (root.hasAttribute && root.hasAttribute(STREAM)) {
      follow(root);
    }
    if (root.querySelectorAll) {
      root.querySelectorAll("[" + STREAM + "]").forEach(follow);
    }
  }

  document.addEventListener("htmx:load", function (event) {
    followWithin(event.target);
  });
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var source = opened.get(event.target);
    if (source) {
      source.close();
    }
  });
  followWithin(document);
})();
