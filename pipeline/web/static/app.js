// Deepfake scanner pages: upload with progress, job polling, the p_fake-over-time chart, and the
// links between the chart, the face thumbnails and the boxed frame.
// No library and no request beyond this server; the chart is SVG built with DOM calls.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const POLL_MS = 700;

  function $(id) { return document.getElementById(id); }

  function formatBytes(n) {
    if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
    return n + " bytes";
  }

  // --- upload page --------------------------------------------------------------------

  function setupUpload() {
    const form = $("upload-form");
    if (!form) return;
    const input = $("file"), drop = $("drop"), chosen = $("chosen"), button = $("submit");
    const status = $("upload-status"), bar = $("upload-progress"), text = $("upload-text");
    const errorBox = $("upload-error");
    const maxBytes = Number(form.dataset.maxBytes);

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      status.hidden = true;
      button.disabled = false;
    }

    function showChosen() {
      const file = input.files && input.files[0];
      chosen.textContent = file ? file.name + " · " + formatBytes(file.size) : "";
      drop.classList.toggle("has-file", Boolean(file));
      errorBox.hidden = true;
    }

    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (event) {
        event.preventDefault();
        drop.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function () { drop.classList.remove("dragging"); });
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        showChosen();
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const file = input.files && input.files[0];
      if (!file) { showError("Choose a video or an image first."); return; }
      if (maxBytes && file.size > maxBytes) {
        showError("This file is " + formatBytes(file.size) + "; the server takes uploads up to " +
                  formatBytes(maxBytes) + ".");
        return;
      }
      const data = new FormData();
      data.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.api);
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        bar.max = e.total;
        bar.value = e.loaded;
        text.textContent = e.loaded < e.total
          ? "Uploading " + Math.round(100 * e.loaded / e.total) + "% of " + formatBytes(e.total)
          : "Checking the file…";
      });
      xhr.addEventListener("load", function () {
        const body = xhr.response;
        if ((xhr.status === 200 || xhr.status === 202) && body && body.links) {
          text.textContent = "Accepted, opening the result…";
          window.location.assign(body.links.page);
        } else if (body && body.error) {
          showError(body.error.title + ": " + body.error.message);
        } else {
          showError("The server answered " + xhr.status + " " + xhr.statusText + ".");
        }
      });
      xhr.addEventListener("error", function () { showError("The upload failed: the server could not be reached."); });
      errorBox.hidden = true;
      status.hidden = false;
      bar.removeAttribute("value");
      text.textContent = "Uploading…";
      button.disabled = true;
      xhr.send(data);
    });
  }

  // --- job page: progress ---------------------------------------------------------------

  function setupPolling(job) {
    const card = $("job-progress");
    if (!card) return;
    const stage = $("job-stage"), bar = $("job-bar"), text = $("job-text");
    const started = Date.now() - 1000 * (job.total_s || 0);

    function render(snapshot) {
      const p = snapshot.progress;
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      if (snapshot.state === "queued") {
        stage.textContent = "Waiting in the queue";
        text.textContent = (p.jobs_ahead || 0) + " job(s) ahead of this one · " + seconds + " s";
        bar.removeAttribute("value");
      } else {
        stage.textContent = "Scanning: " + p.stage;
        if (p.frames_total) {
          bar.max = p.frames_total;
          // nothing done yet: an indeterminate (moving) bar rather than an empty one
          if (p.frames_done > 0) bar.value = p.frames_done; else bar.removeAttribute("value");
          text.textContent = "Frame " + p.frames_done + " of " + p.frames_total + " sampled frames · " + seconds + " s";
        } else {
          text.textContent = "Starting · " + seconds + " s";
        }
      }
    }

    function poll() {
      fetch(card.dataset.poll, { headers: { "Accept": "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 404) throw new Error("This job is gone: its results have expired.");
          if (!response.ok) throw new Error("The server answered " + response.status + ".");
          return response.json();
        })
        .then(function (snapshot) {
          if (snapshot.state === "done" || snapshot.state === "failed") {
            window.location.reload();
            return;
          }
          render(snapshot);
          window.setTimeout(poll, POLL_MS);
        })
        .catch(function (err) {
          text.textContent = err.message;
          window.setTimeout(poll, POLL_MS * 4);
        });
    }
    render(job);
    window.setTimeout(poll, POLL_MS);
  }

  // --- job page: chart ------------------------------------------------------------------

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceStep(span, targetTicks) {
    const raw = span / Math.max(1, targetTicks);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const steps = [1, 2, 5, 10];
    for (let i = 0; i < steps.length; i++) {
      if (steps[i] * power >= raw) return steps[i] * power;
    }
    return 10 * power;
  }

  // The chart is drawn at the width it is shown at (one SVG unit = one CSS pixel), so its
  // labels stay 11-12 px on a phone; it has fewer time ticks when narrow, and is drawn again
  // when the width changes.
  const NARROW_PX = 480;
  const MIN_TICK_GAP_PX = 64;  // room for a label like "10.5" and space either side

  // as the server writes it: two digits, three when it has them (0.50, 0.477)
  function thresholdText(t) {
    return Math.round(t * 100) / 100 === t ? t.toFixed(2) : t.toFixed(3);
  }

  // the key of the threshold lines, above the plot: its text's baseline this far above the plot's top
  const KEY_BASELINE_PX = 14;
  const KEY_LINE_PX = 18, KEY_GAP_PX = 5, KEY_ITEM_GAP_PX = 14;

  function chartLayout(width) {
    const narrow = width < NARROW_PX;
    const W = Math.max(260, Math.round(width));
    const H = narrow ? 250 : 300;
    // top: room for the threshold key, clear of a selected dot (8 px) at p_fake 1
    const M = { left: 56, right: narrow ? 10 : 18, top: 34, bottom: 44 };
    return { W: W, H: H, M: M, plotW: W - M.left - M.right, plotH: H - M.top - M.bottom };
  }

  function drawChart(job, host) {
    const result = job.result;
    const L = chartLayout(host.clientWidth);
    const W = L.W, H = L.H, M = L.M, plotW = L.plotW, plotH = L.plotH;
    const faces = result.faces.map(function (f, i) { return Object.assign({ index: i }, f); });
    const lastT = Math.max.apply(null, faces.map(function (f) { return f.timestamp_s; }));
    const span = Math.max(result.media.duration_s || 0, lastT, 1);
    const x = function (t) { return M.left + plotW * t / span; };
    const y = function (p) { return M.top + plotH * (1 - p); };
    const maxGapS = 1.5 / (result.media.sample_fps || 1);

    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "chart-svg", role: "img",
                            "aria-label": "p_fake of each face over time, one line per person" });
    el("rect", { x: M.left, y: y(1), width: plotW, height: y(result.threshold) - y(1), class: "zone-fake" }, svg);
    // an UNCERTAIN band (uncertain_below set): shaded between its two thresholds
    const band = typeof result.uncertain_below === "number";
    if (band) {
      el("rect", { x: M.left, y: y(result.threshold), width: plotW,
                   height: y(result.uncertain_below) - y(result.threshold), class: "zone-uncertain" }, svg);
    }

    // y grid and labels
    [0, 0.25, 0.5, 0.75, 1].forEach(function (p) {
      el("line", { x1: M.left, x2: M.left + plotW, y1: y(p), y2: y(p), class: "grid" }, svg);
      const label = el("text", { x: M.left - 8, y: y(p) + 4, "text-anchor": "end", class: "tick" }, svg);
      label.textContent = p.toFixed(2);
    });
    // x ticks: as many as fit MIN_TICK_GAP_PX apart
    const step = niceStep(span, Math.max(2, Math.floor(plotW / MIN_TICK_GAP_PX)));
    for (let t = 0; t <= span + 1e-9; t += step) {
      el("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(0) + 5, class: "axis" }, svg);
      const label = el("text", { x: x(t), y: y(0) + 18, "text-anchor": "middle", class: "tick tick-x" }, svg);
      label.textContent = (step < 1 ? t.toFixed(1) : t.toFixed(0));
    }
    el("line", { x1: M.left, x2: M.left + plotW, y1: y(0), y2: y(0), class: "axis" }, svg);
    el("line", { x1: M.left, x2: M.left, y1: y(0), y2: y(1), class: "axis" }, svg);
    const xTitle = el("text", { x: M.left + plotW / 2, y: H - 6, "text-anchor": "middle", class: "axis-title" }, svg);
    xTitle.textContent = "time in the clip (s)";
    const yTitle = el("text", { x: 14, y: M.top + plotH / 2, "text-anchor": "middle", class: "axis-title",
                                transform: "rotate(-90 14 " + (M.top + plotH / 2) + ")" }, svg);
    yTitle.textContent = "p_fake (1 = fake)";

    // the threshold line(s); their labels go in the key above the plot (drawn once the chart is on the page)
    el("line", { x1: M.left, x2: M.left + plotW, y1: y(result.threshold), y2: y(result.threshold),
                 class: "threshold" }, svg);
    const keyItems = [{ text: (band ? "FAKE at " : "threshold ") + thresholdText(result.threshold), low: false }];
    if (band) {
      el("line", { x1: M.left, x2: M.left + plotW, y1: y(result.uncertain_below), y2: y(result.uncertain_below),
                   class: "threshold threshold-low" }, svg);
      keyItems.push({ text: "REAL under " + thresholdText(result.uncertain_below), low: true });
    }

    // one line and a dot per face, per track; people left out of the verdict are drawn first
    // (under the counted ones), faded and dashed
    const byTrack = {};
    faces.forEach(function (f) { (byTrack[f.track_id] = byTrack[f.track_id] || []).push(f); });
    const ids = Object.keys(byTrack).map(Number).sort(function (a, b) { return a - b; });
    const order = ids.filter(function (id) { return !isCounted(result, id); })
      .concat(ids.filter(function (id) { return isCounted(result, id); }));
    order.forEach(function (trackId) {
      const points = byTrack[trackId].sort(function (a, b) { return a.timestamp_s - b.timestamp_s; });
      const counted = isCounted(result, trackId);
      const group = el("g", { class: "series series-" + (trackId % 8) + (counted ? " counted" : " left-out"),
                              "data-track": trackId, "data-counted": counted }, svg);
      // a line joins samples next to each other; where the person was not seen, it breaks
      let segment = [];
      const flush = function () {
        if (segment.length > 1) {
          el("polyline", { points: segment.map(function (f) { return x(f.timestamp_s) + "," + y(f.p_fake); }).join(" "),
                           class: "series-line" }, group);
        }
        segment = [];
      };
      points.forEach(function (f) {
        if (segment.length && f.timestamp_s - segment[segment.length - 1].timestamp_s > maxGapS) flush();
        segment.push(f);
      });
      flush();
      points.forEach(function (f) {
        const text = "person " + trackId + (counted ? "" : " (left out)") + " · " + f.timestamp_s.toFixed(1) +
          " s · p_fake " + f.p_fake.toFixed(3);
        const dot = el("circle", { cx: x(f.timestamp_s), cy: y(f.p_fake), r: 4.5, class: "series-dot",
                                   "data-face": f.index, tabindex: 0, role: "button", "aria-label": text }, group);
        el("title", {}, dot).textContent = text;
      });
    });
    host.replaceChildren(svg);
    drawThresholdKey(svg, keyItems, M.left + plotW, M.top - KEY_BASELINE_PX);
    return svg;
  }

  // The key of the threshold lines, in the margin above the plot and ending at its right edge: a
  // dashed stroke like the line's, then its label. Outside the plot, no person's line or dot runs
  // under it. Laid out from the texts' measured widths, so it is drawn into an SVG on the page.
  function drawThresholdKey(svg, items, right, baseline) {
    const nodes = items.map(function (item) {
      const line = el("line", { y1: baseline - 4, y2: baseline - 4, class: "key-line" + (item.low ? " low" : "") }, svg);
      const text = el("text", { y: baseline, class: "threshold-label" + (item.low ? " low" : "") }, svg);
      text.textContent = item.text;
      // a chart drawn while hidden measures 0: about 6.2 px a character at 11 px then
      const width = text.getComputedTextLength() || 6.2 * item.text.length;
      return { line: line, text: text, width: width };
    });
    const total = nodes.reduce(function (sum, n) { return sum + KEY_LINE_PX + KEY_GAP_PX + n.width; }, 0) +
      KEY_ITEM_GAP_PX * (nodes.length - 1);
    let left = Math.max(4, right - total);
    nodes.forEach(function (n) {
      n.line.setAttribute("x1", left);
      n.line.setAttribute("x2", left + KEY_LINE_PX);
      n.text.setAttribute("x", left + KEY_LINE_PX + KEY_GAP_PX);
      left += KEY_LINE_PX + KEY_GAP_PX + n.width + KEY_ITEM_GAP_PX;
    });
  }

  // the payload's person of a track (null for a result without one)
  function personOf(result, trackId) {
    return (result.tracks || []).find(function (t) { return t.track_id === trackId; }) || null;
  }

  // whether a track takes part in the verdict (a result that does not say: it does)
  function isCounted(result, trackId) {
    const track = personOf(result, trackId);
    return !track || track.counted !== false;
  }

  function drawLegend(result) {
    const legend = $("chart-legend");
    if (!legend) return;
    const ids = Array.from(new Set(result.faces.map(function (f) { return f.track_id; }))).sort(function (a, b) { return a - b; });
    ids.forEach(function (trackId) {
      const track = personOf(result, trackId);
      const counted = isCounted(result, trackId);
      const item = document.createElement("li");
      item.className = counted ? "counted" : "left-out";
      item.dataset.track = trackId;
      const swatch = document.createElement("span");
      swatch.className = "swatch swatch-" + (trackId % 8) + (counted ? "" : " swatch-left-out");
      item.appendChild(swatch);
      const parts = ["person " + trackId];
      if (track) {
        if (track.sets_verdict) parts.push("sets the verdict");
        else if (!counted || track.reason !== "counted") parts.push(track.reason_text);
        parts.push(track.n_faces + (track.n_faces === 1 ? " face" : " faces"));
        parts.push("mean p_fake " + track.mean_p_fake.toFixed(3));
      }
      item.appendChild(document.createTextNode(parts.join(" · ")));
      legend.appendChild(item);
    });
  }

  // --- job page: faces, frame and chart point at each other -----------------------------

  function setupEvidence(job) {
    const host = $("chart");
    const result = job.result;
    if (!result || !result.faces || !result.faces.length) return;
    let selected = [];  // indices into result.faces of the faces picked last
    let svg = null;

    function dotsOf(indices) {
      if (!svg) return [];
      return indices.map(function (i) { return svg.querySelector('circle[data-face="' + i + '"]'); })
        .filter(Boolean);
    }

    // mark faces on the chart and among the thumbnails; returns the first figure marked
    function select(indices) {
      document.querySelectorAll(".series-dot.selected, .face.selected").forEach(function (node) {
        node.classList.remove("selected");
      });
      selected = indices;
      dotsOf(indices).forEach(function (dot) {
        dot.classList.add("selected");
        dot.parentNode.appendChild(dot);  // on top of its neighbours
      });
      let first = null;
      indices.forEach(function (i) {
        const figure = $("face-" + i);
        if (figure) { figure.classList.add("selected"); first = first || figure; }
      });
      return first;
    }

    function bindDots() {
      svg.querySelectorAll("circle.series-dot").forEach(function (dot) {
        const pick = function () {
          const figure = select([Number(dot.dataset.face)]);
          if (figure) figure.scrollIntoView({ block: "nearest", behavior: "smooth" });
        };
        dot.addEventListener("click", pick);
        dot.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(); }
        });
      });
    }

    if (host) {
      svg = drawChart(job, host);
      drawLegend(result);
      bindDots();
      let drawnWidth = host.clientWidth, pending = null;
      window.addEventListener("resize", function () {
        window.clearTimeout(pending);
        pending = window.setTimeout(function () {
          if (host.clientWidth === drawnWidth) return;
          drawnWidth = host.clientWidth;
          svg = drawChart(job, host);
          bindDots();
          select(selected);
        }, 150);
      });
    }

    // a face's time, or the frame's, marks its dot(s) on the chart and scrolls the chart into view
    document.querySelectorAll(".time-link").forEach(function (button) {
      button.addEventListener("click", function () {
        let indices;
        if (button.dataset.face !== undefined) {
          indices = [Number(button.dataset.face)];
        } else {
          const sample = Number(button.dataset.sample);
          indices = [];
          result.faces.forEach(function (f, i) { if (f.sample_index === sample) indices.push(i); });
        }
        select(indices);
        if (host) host.scrollIntoView({ block: "nearest", behavior: "smooth" });
      });
    });

    // hovering a thumbnail marks its dot
    document.querySelectorAll(".face[data-face]").forEach(function (figure) {
      figure.addEventListener("mouseenter", function () {
        dotsOf([Number(figure.dataset.face)]).forEach(function (dot) { dot.classList.add("marked"); });
      });
      figure.addEventListener("mouseleave", function () {
        dotsOf([Number(figure.dataset.face)]).forEach(function (dot) { dot.classList.remove("marked"); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupUpload();
    const dataNode = $("job-data");
    if (!dataNode) return;
    const job = JSON.parse(dataNode.textContent);
    setupPolling(job);
    if (job.state === "done") setupEvidence(job);
  });
})();
