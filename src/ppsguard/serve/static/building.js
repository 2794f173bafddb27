/* The building of one host on one canvas: 64 floors of 1,024 ports (ports 0-1023 on the taller
   ground floor), each door coloured by the audit's verdict or the scan's state. Zoom with the
   wheel or the buttons, pan by dragging, hover for the port, service and verdict, click for the
   door card (fetched by htmx). Live alerts for this host make their doors blink.
   No inline script, no innerHTML: every text from the server goes through textContent. */
(function () {
  "use strict";
  var canvas = document.getElementById("building");
  if (!canvas) { return; }
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("tip");
  var countEl = document.getElementById("lit-count");
  var FLOORS = 64, PER = 1024, GROUND = 3, GAP = 0.25;
  var WORLD_H = (FLOORS - 1) + GAP + GROUND;
  var COLOURS = {
    documented: "#7fd67f", undocumented: "#ffcc4d", risky: "#ff5252", blocked: "#c3c9cf",
    open: "#5cc8ff", filtered: "#6b5f8f", closed: "#4d5566", "open|filtered": "#8a7fb0"
  };
  var LIT = { documented: 1, undocumented: 1, risky: 1, blocked: 1, open: 1 };
  var data = null, byPort = new Map(), groups = [];
  var zoom = 1, ox = 0, oy = 0, blinks = new Map(), frame = 0;

  function floorTop(f) { return f === 0 ? (FLOORS - 1) + GAP : (FLOORS - 1) - f; }
  function floorH(f) { return f === 0 ? GROUND : 0.86; }

  function size() {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 1100;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(width * 0.58 * ratio);
  }

  function sx() { return canvas.width / PER * zoom; }
  function sy() { return canvas.height / WORLD_H * zoom; }

  function draw() {
    frame = 0;
    var w = canvas.width, h = canvas.height, x0 = ox, y0 = oy, kx = sx(), ky = sy();
    ctx.fillStyle = "#1f232c";
    ctx.fillRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = false;
    for (var f = 0; f < FLOORS; f++) {  /* every door and window of a floor: one image row */
      ctx.drawImage(image, 0, f, PER, 1, x0, y0 + floorTop(f) * ky, PER * kx, floorH(f) * ky);
    }
    if (!data) { return; }
    var minLit = Math.max(kx, 5), now = performance.now();
    for (var g = 0; g < groups.length; g++) {  /* lit doors drawn wider, so each one shows */
      var group = groups[g];
      if (!group.lit) { continue; }
      ctx.fillStyle = COLOURS[group.name] || "#fff";
      var cells = group.cells;
      for (var i = 0; i < cells.length; i += 2) {
        var port = cells[i], fl = cells[i + 1];
        ctx.fillRect(x0 + (port % PER) * kx - (minLit - kx) / 2, y0 + floorTop(fl) * ky,
          minLit, floorH(fl) * ky);
      }
    }
    var active = false;
    blinks.forEach(function (until, port) {
      if (until < now) { blinks.delete(port); return; }
      active = true;
      var on = Math.floor((until - now) / 200) % 2 === 0;
      var fl = Math.floor(port / PER);
      ctx.fillStyle = on ? "#ffffff" : "#ff2d2d";
      ctx.fillRect(x0 + (port % PER) * kx - 3, y0 + floorTop(fl) * ky - 2,
        Math.max(kx, 3) + 6, floorH(fl) * ky + 4);
    });
    if (active && !frame) { frame = requestAnimationFrame(draw); }
  }

  /* The whole building at one pixel per port: 1,024 x 64, floors in their wall colour, every
     result in its colour; scaled by drawImage, so 65,535 results cost 64 calls, not 65,535. */
  var image = document.createElement("canvas");
  image.width = PER;
  image.height = FLOORS;
  var pixels = image.getContext("2d").createImageData(PER, FLOORS);

  function rgb(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16),
      parseInt(hex.slice(5, 7), 16)];
  }

  function paint(doc) {
    var px = pixels.data, f, c, k;
    for (f = 0; f < FLOORS; f++) {
      var wall = rgb(f === 0 ? "#5b4636" : (f * PER >= 49152 ? "#2c3140" : "#363c4b"));
      for (c = 0; c < PER; c++) {
        k = (f * PER + c) * 4;
        px[k] = wall[0]; px[k + 1] = wall[1]; px[k + 2] = wall[2]; px[k + 3] = 255;
      }
    }
    if (doc) {
      var colour = doc.codes.map(function (name) { return rgb(COLOURS[name] || "#000000"); });
      for (var i = 0; i < doc.port.length; i++) {
        var one = colour[doc.code[i]];
        k = doc.port[i] * 4;  /* port p is pixel p: row p / 1024, column p % 1024 */
        px[k] = one[0]; px[k + 1] = one[1]; px[k + 2] = one[2];
      }
    }
    image.getContext("2d").putImageData(pixels, 0, 0);
  }

  function later() { if (!frame) { frame = requestAnimationFrame(draw); } }

  function load(doc) {
    data = doc;
    var named = {}, order = [7, 8, 6, 5, 1, 4, 2, 3];
    byPort = new Map();
    for (var i = 0; i < doc.port.length; i++) {
      var port = doc.port[i], code = doc.code[i];
      var list = byPort.get(port);
      if (!list) { list = []; byPort.set(port, list); }
      list.push(i);
      if (LIT[doc.codes[code]]) { (named[code] = named[code] || []).push(port, Math.floor(port / PER)); }
    }
    paint(doc);
    groups = [];
    order.forEach(function (code) {
      var name = doc.codes[code];
      if (named[code]) { groups.push({ name: name, lit: !!LIT[name], cells: named[code] }); }
    });
    draw();
    canvas.dataset.lit = String(doc.lit);
    canvas.dataset.results = String(doc.port.length);
    canvas.dataset.drawn = "1";
    canvas.dataset.drawnAt = String(performance.now());  /* benchmarks/dashboard.py reads it */
    countEl.textContent = doc.lit + " lit of 65,536 doors and windows (" + doc.port.length +
      " results" + (doc.kind ? ", from the last " + doc.kind : "") + ")";
    document.body.dataset.building = "drawn";
  }

  function at(event) {
    var rect = canvas.getBoundingClientRect();
    var px = (event.clientX - rect.left) * canvas.width / rect.width;
    var py = (event.clientY - rect.top) * canvas.height / rect.height;
    var wx = (px - ox) / sx(), wy = (py - oy) / sy();
    var floor = -1;
    for (var f = 0; f < FLOORS; f++) {
      var top = floorTop(f);
      if (wy >= top && wy <= top + floorH(f) + 0.14) { floor = f; break; }
    }
    if (floor < 0 || wx < 0 || wx >= PER) { return null; }
    var col = Math.floor(wx), reach = Math.ceil(2 / Math.max(sx(), 0.01));
    for (var dist = 0; dist <= reach; dist++) {
      var cands = [col - dist, col + dist];
      for (var k = 0; k < 2; k++) {
        var c = cands[k];
        if (c < 0 || c >= PER) { continue; }
        var hit = byPort.get(floor * PER + c);
        if (hit) { return hit; }
      }
    }
    return { empty: floor * PER + col };
  }

  function describe(hit) {
    if (hit.empty !== undefined) { return "port " + hit.empty + ": nothing recorded"; }
    return hit.map(function (i) {
      var service = data.service[i] >= 0 ? data.services[data.service[i]] : "unknown service";
      return data.protocols[data.proto[i]] + "/" + data.port[i] + " " + service + " — " +
        data.codes[data.code[i]];
    }).join("; ");
  }

  var drag = null;
  canvas.addEventListener("mousemove", function (event) {
    if (drag) {
      ox = drag.ox + (event.clientX - drag.x) * canvas.width / canvas.clientWidth;
      oy = drag.oy + (event.clientY - drag.y) * canvas.width / canvas.clientWidth;
      drag.moved = true;
      later();
      return;
    }
    if (!data) { return; }
    var hit = at(event);
    if (!hit) { tip.hidden = true; return; }
    tip.textContent = describe(hit);
    tip.hidden = false;
    tip.style.left = (event.pageX + 12) + "px";
    tip.style.top = (event.pageY + 12) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; drag = null; });
  canvas.addEventListener("mousedown", function (event) {
    drag = { x: event.clientX, y: event.clientY, ox: ox, oy: oy, moved: false };
  });
  canvas.addEventListener("mouseup", function (event) {
    var moved = drag && drag.moved;
    drag = null;
    if (moved || !data) { return; }
    var hit = at(event);
    if (hit && hit.empty === undefined) { openCard(hit[0]); }
  });

  function openCard(i) {
    var url = canvas.dataset.card + data.protocols[data.proto[i]] + "/" + data.port[i];
    window.htmx.ajax("GET", url, { target: "#card", swap: "innerHTML" });
  }

  function zoomAt(factor, px, py) {
    var next = Math.min(Math.max(zoom * factor, 1), 64);
    factor = next / zoom;
    ox = px - (px - ox) * factor;
    oy = py - (py - oy) * factor;
    zoom = next;
    if (zoom === 1) { ox = 0; oy = 0; }
    later();
  }
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var rect = canvas.getBoundingClientRect();
    zoomAt(event.deltaY < 0 ? 1.25 : 0.8, (event.clientX - rect.left) * canvas.width / rect.width,
      (event.clientY - rect.top) * canvas.height / rect.height);
  }, { passive: false });
  document.getElementById("zoom-in").addEventListener("click", function () {
    zoomAt(1.5, canvas.width / 2, canvas.height / 2);
  });
  document.getElementById("zoom-out").addEventListener("click", function () {
    zoomAt(1 / 1.5, canvas.width / 2, canvas.height / 2);
  });
  document.getElementById("zoom-reset").addEventListener("click", function () {
    zoom = 1; ox = 0; oy = 0; later();
  });
  window.addEventListener("resize", function () { size(); later(); });

  if (window.EventSource && canvas.dataset.live) {
    var source = new EventSource(canvas.dataset.live);
    var knock = function (message) {  /* an alert, or one connection at a door */
      var alert = JSON.parse(message.data);
      if (alert.knock.host && alert.knock.host !== canvas.dataset.host) { return; }
      if (!alert.knock.ports.length) { return; }
      var until = performance.now() + 3000;
      alert.knock.ports.forEach(function (port) { blinks.set(port, until); });
      canvas.dataset.knocks = String(Number(canvas.dataset.knocks || 0) + 1);
      later();
    };
    source.addEventListener("ready", function () { canvas.dataset.liveState = "open"; });
    source.addEventListener("error", function () { canvas.dataset.liveState = "reconnecting"; });
    source.addEventListener("alert", knock);
    source.addEventListener("event", knock);
  }

  size();
  paint(null);
  draw();
  fetch(canvas.dataset.src, { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(load)
    .catch(function (error) { countEl.textContent = "could not load the building: " + error; });
}());
