// Secure-bed dashboard: live updates by server-sent events and a small SVG chart. Local only.
(function () {
  "use strict";
  var LEVELS = ["2", "3", "4"];
  var SVGNS = "http://www.w3.org/2000/svg";
  var regionSelect = document.getElementById("region");
  var body = document.getElementById("capacity-body");
  var stateEl = document.getElementById("live-state");
  var chart = document.getElementById("chart");
  var latest = null;
  // the page's language and its texts (broker/apps/web/i18n.py), times in Dutch time
  var LANG = document.body.getAttribute("data-lang") || "nl";
  var MSG = JSON.parse(chart.getAttribute("data-messages") || "{}");
  function msg(key, values) {
    var text = MSG[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(values[k])); });
    return text;
  }
  // the parts of a moment in Dutch time, written as the server writes them (i18n.when)
  var PARTS = new Intl.DateTimeFormat("en-GB", {timeZone: "Europe/Amsterdam", hour12: false,
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit"});
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function parts(t) {
    var p = {};
    PARTS.formatToParts(new Date(t)).forEach(function (x) { p[x.type] = x.value; });
    if (p.hour === "24") { p.hour = "00"; }
    return p;
  }

  function el(tag, attrs, text) {
    var node = tag === "svg" || ["line", "polyline", "text", "g", "rect", "title"].indexOf(tag) >= 0
      ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function selectedRegion() { return regionSelect ? regionSelect.value : ""; }

  function renderTable(data) {
    var region = selectedRegion();
    var rows = data.regions.filter(function (r) { return !region || r === region; });
    // keep the region list current
    if (regionSelect) {
      var known = Array.prototype.map.call(regionSelect.options, function (o) { return o.value; });
      data.regions.forEach(function (r) {
        if (known.indexOf(r) < 0) { regionSelect.appendChild(el("option", {value: r}, r)); }
      });
    }
    body.textContent = "";
    if (!rows.length) {
      var tr = el("tr", {"class": "empty"});
      tr.appendChild(el("td", {colspan: String(LEVELS.length + 2)}, msg("dashboard.no_reports")));
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (r) {
      var free = 0;
      var tr = el("tr", {"data-region": r});
      tr.appendChild(el("td", {}, r));
      LEVELS.forEach(function (lv) {
        var c = data.cells[r + "|" + lv];
        var td = el("td", {"class": c && c.stale ? "num stale" : "num"});
        if (c) {
          td.appendChild(el("b", {}, String(c.available)));
          td.appendChild(document.createTextNode(" "));
          td.appendChild(el("span", {"class": "muted"}, "/ " + c.in_service));
          if (c.stale) {
            var since = c.oldest_at ? stamp(Date.parse(c.oldest_at)) : "-";
            td.setAttribute("title", msg("dashboard.stale_title", {when: since}));
            td.appendChild(document.createTextNode(" "));
            td.appendChild(el("small", {"class": "stale-mark"}, msg("dashboard.stale_since", {when: since})));
          }
          free += c.available;
        } else { td.textContent = "-"; }
        tr.appendChild(td);
      });
      tr.appendChild(el("td", {"class": "num total"}, String(free)));
      if (free === 0) { tr.setAttribute("class", "none-free"); }
      body.appendChild(tr);
    });
    var updated = document.getElementById("updated");
    if (updated) { updated.textContent = data.updated_at ? stamp(Date.parse(data.updated_at), true) : msg("dashboard.none_yet"); }
    var staleNote = document.getElementById("stale-note");
    if (staleNote) {
      staleNote.hidden = !(data.stale && data.stale.length);
      staleNote.textContent = msg("dashboard.stale_reports") + " " + (data.stale || []).join(", ");
    }
  }

  function niceTop(max) {
    var step = Math.max(1, Math.ceil(max / 4));
    return step * 4;
  }

  function clock(t) { var p = parts(t); return p.hour + ":" + p.minute + ":" + p.second; }

  // date and time: a report of yesterday must not read as one of today
  function stamp(t, seconds) {
    var p = parts(t);
    var time = p.hour + ":" + p.minute + (seconds ? ":" + p.second : "");
    if (LANG === "nl") { return p.day + "-" + p.month + "-" + p.year + " " + time; }
    return String(Number(p.day)) + " " + MONTHS[Number(p.month) - 1] + " " + p.year + " " + time;
  }

  function renderChart(data) {
    var region = selectedRegion();
    var W = 760, H = 220, L = 40, R = 10, T = 10, B = 30;
    chart.textContent = "";
    document.getElementById("chart-scope").textContent = region || msg("dashboard.all_regions");
    var points = data.history.map(function (p) {
      var sums = {"2": 0, "3": 0, "4": 0};
      Object.keys(p.available).forEach(function (key) {
        var parts = key.split("|");
        if ((!region || parts[0] === region) && sums[parts[1]] !== undefined) {
          sums[parts[1]] += p.available[key];
        }
      });
      return {t: Date.parse(p.at), v: sums};
    });
    if (!points.length) {
      chart.appendChild(el("text", {x: String(W / 2 - 60), y: String(H / 2)}, msg("dashboard.no_history")));
      return;
    }
    // availability holds until the next report: draw steps, and hold the last value until now
    var now = Math.max(Date.parse(data.taken_at), points[points.length - 1].t);
    var t0 = points[0].t, t1 = now > t0 ? now : t0 + 60000;
    var max = 1;
    points.forEach(function (p) { LEVELS.forEach(function (lv) { max = Math.max(max, p.v[lv]); }); });
    var top = niceTop(max);
    function x(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function y(v) { return H - B - v / top * (H - T - B); }
    for (var i = 0; i <= 4; i++) {
      var v = top * i / 4;
      chart.appendChild(el("line", {"class": "grid", x1: String(L), x2: String(W - R), y1: String(y(v)), y2: String(y(v))}));
      chart.appendChild(el("text", {x: "4", y: String(y(v) + 4)}, String(v)));
    }
    chart.appendChild(el("line", {"class": "axis", x1: String(L), x2: String(W - R), y1: String(H - B), y2: String(H - B)}));
    chart.appendChild(el("text", {x: String(L), y: String(H - 8)}, clock(t0)));
    chart.appendChild(el("text", {x: String(W - R - 80), y: String(H - 8)}, clock(t1)));
    LEVELS.forEach(function (lv) {
      var pts = [];
      points.forEach(function (p, i) {
        if (i > 0) { pts.push(x(p.t).toFixed(1) + "," + y(points[i - 1].v[lv]).toFixed(1)); }
        pts.push(x(p.t).toFixed(1) + "," + y(p.v[lv]).toFixed(1));
      });
      pts.push(x(t1).toFixed(1) + "," + y(points[points.length - 1].v[lv]).toFixed(1));
      var line = el("polyline", {"class": "line l" + lv, points: pts.join(" ")});
      line.appendChild(el("title", {}, msg("dashboard.available_now", {level: lv, n: points[points.length - 1].v[lv]})));
      chart.appendChild(line);
    });
  }

  function render(data) { latest = data; renderTable(data); renderChart(data); }

  if (regionSelect) {
    regionSelect.addEventListener("change", function () {
      if (latest) { render(latest); }
      var url = new URL(window.location.href);
      if (regionSelect.value) { url.searchParams.set("region", regionSelect.value); }
      else { url.searchParams.delete("region"); }
      window.history.replaceState(null, "", url.toString());
    });
  }

  function connect() {
    var source = new EventSource("/api/capacity/stream");
    source.onopen = function () { stateEl.setAttribute("data-state", "live"); };
    source.onmessage = function (event) { render(JSON.parse(event.data)); };
    source.addEventListener("signed-out", function () { source.close(); window.location.href = "/login"; });
    source.onerror = function () { stateEl.setAttribute("data-state", "offline"); };
  }
  connect();
})();
