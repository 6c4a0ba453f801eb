// The host's page works without this script; with it, the log is live,
// the overview's sections refresh, and the copy buttons work.
"use strict";

function copyText(el, button) {
  const text = el.textContent;
  const done = () => { const t = button.textContent; button.textContent = "Copied"; setTimeout(() => { button.textContent = t; }, 1500); };
  // The page is plain HTTP inside the guest: no async clipboard there.
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try { if (document.execCommand("copy")) done(); } finally { area.remove(); }
}

function wireCopy(root) {
  root.querySelectorAll("button[data-copy]").forEach((b) => {
    b.hidden = false;
    b.addEventListener("click", () => { const el = document.querySelector(b.dataset.copy); if (el) copyText(el, b); });
  });
}

function streamLog(pre) {
  const live = document.getElementById("live");
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  pre.scrollTop = pre.scrollHeight;
  const es = new EventSource(pre.dataset.stream);
  es.onopen = () => { if (live) live.textContent = "live"; };
  es.onerror = () => { if (live) live.textContent = "reconnecting…"; };
  es.onmessage = (ev) => {
    const follow = atBottom();
    pre.appendChild(document.createTextNode(ev.data + "\n"));
    // Keep the page light: the newest 2000 lines.
    while (pre.childNodes.length > 2000) pre.removeChild(pre.firstChild);
    if (follow) pre.scrollTop = pre.scrollHeight;
  };
}

// refresh redraws the overview's live sections every few seconds, except
// while a form in them has focus.
function refresh() {
  document.querySelectorAll("[data-part]").forEach(async (sec) => {
    if (sec.contains(document.activeElement) && document.activeElement !== document.body) return;
    try {
      const r = await fetch("/part/" + sec.dataset.part, { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) { location.href = "/login"; return; }
      if (!r.ok) return;
      const t = document.createElement("template");
      t.innerHTML = (await r.text()).trim();
      const fresh = t.content.firstElementChild;
      if (fresh) { sec.replaceWith(fresh); wireCopy(fresh); }
    } catch (e) { /* the host is busy or restarting: try again next time */ }
  });
}

// upload sends the update form with a progress bar; the host's answer
// (a redirect to the overview, with what it did) is then shown.
function wireUpload(form) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const bar = document.getElementById("update-progress");
    const status = document.getElementById("update-status");
    const button = form.querySelector("button");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Thinhost-Script", "1");
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.floor((100 * e.loaded) / e.total);
      status.textContent = bar.value + "% sent";
    };
    xhr.upload.onload = () => { status.textContent = "sent; the host checks every byte…"; };
    xhr.onload = () => { location.href = "/"; };
    xhr.onerror = () => { status.textContent = "the upload failed: the connection to the host was lost"; button.disabled = false; };
    button.disabled = true;
    xhr.send(new FormData(form));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const up = document.getElementById("update-form");
  if (up) wireUpload(up);
  wireCopy(document);
  const pre = document.getElementById("log");
  if (pre && pre.dataset.stream) streamLog(pre);
  if (document.querySelector("[data-part]")) setInterval(refresh, 4000);
});
