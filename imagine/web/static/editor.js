// The Vary (Region) editor: paint a mask over the image (brush, lasso, rectangle), undo, clear,
// and send it with the prompt. The mask canvas has the image's own pixel size; the PNG sent is
// white where to repaint on black.
"use strict";
(() => {
  const picture = document.getElementById("picture");
  const canvas = document.getElementById("mask");
  const ctx = canvas.getContext("2d");
  const size = document.getElementById("size");
  const form = document.getElementById("send");
  const status = document.getElementById("status");
  const submit = document.getElementById("submit");
  const PAINT = "rgb(88, 101, 242)";  // opaque: the canvas itself is see-through (style.css)
  let tool = "brush";
  let history = [];
  let stroke = null;

  function setup() {
    canvas.width = picture.naturalWidth;
    canvas.height = picture.naturalHeight;
  }
  if (picture.complete && picture.naturalWidth) setup(); else picture.addEventListener("load", setup);

  document.querySelectorAll("[data-tool]").forEach((button) => {
    button.addEventListener("click", () => {
      tool = button.dataset.tool;
      document.querySelectorAll("[data-tool]").forEach((b) =>
        b.setAttribute("aria-pressed", String(b === button)));
    });
  });

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  }
  function brushWidth() {
    return Number(size.value) * canvas.width / canvas.getBoundingClientRect().width;
  }
  function snapshot() {
    history.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (history.length > 50) history.shift();
  }
  function restore() {
    ctx.putImageData(stroke.before, 0, 0);
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!canvas.width) return;
    canvas.setPointerCapture(event.pointerId);
    snapshot();
    const at = point(event);
    stroke = { start: at, points: [at], before: history[history.length - 1] };
    if (tool === "brush") { ctx.fillStyle = PAINT; dot(at); }
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const at = point(event);
    if (tool === "brush") line(stroke.points[stroke.points.length - 1], at);
    stroke.points.push(at);
    if (tool !== "brush") { restore(); shape(false); }
  });
  function finish() {
    if (!stroke) return;
    if (tool !== "brush") { restore(); shape(true); }
    stroke = null;
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  function dot(at) {
    ctx.beginPath();
    ctx.arc(at[0], at[1], brushWidth() / 2, 0, Math.PI * 2);
    ctx.fill();
  }
  function line(from, to) {
    ctx.save();
    ctx.globalCompositeOperation = "source-over";
    ctx.strokeStyle = PAINT;
    ctx.lineWidth = brushWidth();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    ctx.restore();
  }
  function shape(filled) {
    const [x0, y0] = stroke.start;
    const [x1, y1] = stroke.points[stroke.points.length - 1];
    ctx.save();
    ctx.fillStyle = PAINT;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2 * canvas.width / canvas.getBoundingClientRect().width;
    ctx.beginPath();
    if (tool === "rect") ctx.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    else { ctx.moveTo(x0, y0); stroke.points.forEach(([x, y]) => ctx.lineTo(x, y)); ctx.closePath(); }
    if (filled) ctx.fill(); else ctx.stroke();
    ctx.restore();
  }

  document.getElementById("undo").addEventListener("click", () => {
    if (history.length) ctx.putImageData(history.pop(), 0, 0);
  });
  document.getElementById("clear").addEventListener("click", () => {
    snapshot();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
  });

  function maskPNG() {
    // opaque painted pixels become white, everything else black
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const o = out.getContext("2d");
    const painted = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const pixels = painted.data;
    let any = false;
    for (let i = 0; i < pixels.length; i += 4) {
      const on = pixels[i + 3] > 0;
      any = any || on;
      pixels[i] = pixels[i + 1] = pixels[i + 2] = on ? 255 : 0;
      pixels[i + 3] = 255;
    }
    o.putImageData(painted, 0, 0);
    return any ? out.toDataURL("image/png") : null;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mask = maskPNG();
    if (!mask) { say("Paint the region to vary first.", false); return; }
    submit.disabled = true;
    say("Sending…", null);
    try {
      const response = await fetch(form.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ mask, prompt: document.getElementById("prompt").value,
                               csrf: form.dataset.csrf }),
        credentials: "same-origin",
      });
      const data = await response.json();
      say(data.message, Boolean(data.ok));
    } catch (_) {
      say("The service could not be reached. Try again in a moment.", false);
    } finally {
      submit.disabled = false;
    }
  });
  function say(text, ok) {
    status.textContent = text;
    status.className = ok === null ? "" : (ok ? "ok" : "bad");
  }
})();
