/* The live page: alerts from the desk's event stream, newest first. Every value is set with
   textContent, so a hostile process name or banner stays text. */
(function () {
  "use strict";
  var table = document.getElementById("alerts");
  if (!table || !window.EventSource) { return; }
  var rows = document.getElementById("alert-rows");
  var state = document.getElementById("live-state");
  var empty = document.getElementById("no-alerts");
  var source = new EventSource(table.dataset.src);
  function cell(row, text, name) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (name) { td.className = name; }
    row.appendChild(td);
  }
  source.addEventListener("ready", function () {
    state.textContent = "connected";
    document.body.dataset.live = "open";
  });
  source.addEventListener("error", function () { state.textContent = "reconnecting…"; });
  var events = document.getElementById("event-rows");
  source.addEventListener("event", function (message) {
    var e = JSON.parse(message.data);
    var row = document.createElement("tr");
    row.className = "event kind-" + String(e.kind).replace(/[^a-z0-9-]/gi, "_");
    row.dataset.shownAt = String(Date.now());
    cell(row, e.at);
    cell(row, e.host);
    cell(row, e.kind);
    cell(row, e.proto);
    cell(row, e.message, "message");
    cell(row, e.entry);
    events.insertBefore(row, events.firstChild);
    while (events.children.length > 200) { events.removeChild(events.lastChild); }
  });
  source.addEventListener("alert", function (message) {
    var a = JSON.parse(message.data);
    var row = document.createElement("tr");
    row.className = "alert kind-" + String(a.kind).replace(/[^a-z0-9-]/gi, "_") +
      " sev-" + String(a.severity).replace(/[^a-z]/gi, "_");
    cell(row, a.at);
    cell(row, a.host);
    cell(row, a.severity, "sev");
    cell(row, a.kind);
    cell(row, a.remote);
    cell(row, (a.proto ? a.proto + " " : "") + a.ports.join(","));
    cell(row, a.message, "message");
    cell(row, a.entry);
    row.dataset.shownAt = String(Date.now());  /* benchmarks/dashboard.py reads it */
    rows.insertBefore(row, rows.firstChild);
    while (rows.children.length > 500) { rows.removeChild(rows.lastChild); }
    empty.hidden = true;
  });
}());
