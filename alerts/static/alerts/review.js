/* Review pages: the queue updates live; the detail page decides with buttons or keys. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const table = document.getElementById("alert-table");
  const review = document.getElementById("review");

  function statusRow(tbody, alert) {
    let tr = tbody.querySelector(`tr[data-id="${alert.id}"]`);
    const wanted = table.dataset.status;
    const matches = (!wanted || wanted === "all" || wanted === alert.status) &&
      (!table.dataset.site || table.dataset.site === alert.site);
    if (!tr) {
      if (!matches) return;
      const empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      tr = document.createElement("tr");
      tr.dataset.id = alert.id;
      tr.innerHTML = "<td><a></a></td><td><time></time></td><td></td><td></td><td></td><td></td><td class=status></td>";
      tr.querySelector("a").href = "/alerts/" + alert.id + "/";
      tr.querySelector("a").textContent = alert.id;
      tr.querySelector("time").textContent = new Date(alert.started_at).toLocaleString();
      const cells = tr.children;
      cells[2].textContent = alert.site; cells[3].textContent = alert.location;
      cells[4].textContent = alert.device.name; cells[5].textContent = alert.peak_score.toFixed(2);
      tbody.insertBefore(tr, tbody.firstChild);
      tr.classList.add("fresh");
    }
    tr.className = tr.className.replace(/status-\w+/, "") + " status-" + alert.status;
    tr.querySelector(".status").textContent = alert.status +
      (alert.review ? " by " + alert.review.user : "");
  }

  if (table) {
    const tbody = table.querySelector("tbody");
    window.eyescreamReview = {live: EyeLive.start({lastId: data.last_id, wsPath: data.ws_path,
      alarmRepeatS: data.alarm_repeat_s,
      knownIds: () => [...tbody.querySelectorAll("tr[data-id]")].map((tr) => Number(tr.dataset.id)),
      onAlert: (alert, kind) => {
        statusRow(tbody, alert);
        if ((kind === "created" || kind === "missed") && alert.status === "new") {
          EyeLive.toast(`New alert at ${alert.location} (${alert.device.name})`, "/alerts/" + alert.id + "/");
        }
      }})};
  }

  if (!review) return;
  let alert = data.alert;
  const id = alert.id;
  const audio = document.getElementById("snippet");
  const img = document.getElementById("spectrogram");
  const buttons = document.getElementById("buttons");
  const decided = document.getElementById("decided");
  const conflict = document.getElementById("conflict");
  const badge = document.getElementById("status");
  const note = document.getElementById("note");
  const next = document.getElementById("next");
  const names = {"1": "scream", "0_0": "human sound", "0_1": "siren/bird/machine", "0_2": "other background"};

  function drawCurve() {
    // The picture has the curve under the spectrogram; this one is the fallback with a playhead.
    const canvas = document.getElementById("curve");
    canvas.hidden = !!alert.spectrogram_url;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const curve = alert.score_curve || [];
    const duration = (audio && isFinite(audio.duration) && audio.duration > 0) ? audio.duration :
      Math.max(1, ...curve.map((p) => p[0]));
    ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
    ctx.strokeStyle = "#d33"; ctx.lineWidth = 2; ctx.beginPath();
    curve.forEach(([t, p], i) => {
      const x = (t / duration) * w, y = h - p * (h - 4) - 2;
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
    if (audio && audio.duration > 0) {
      ctx.strokeStyle = "#06c"; ctx.lineWidth = 1;
      const x = (audio.currentTime / audio.duration) * w;
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke();
    }
  }
  if (audio) {
    audio.addEventListener("loadedmetadata", drawCurve);
    audio.addEventListener("timeupdate", drawCurve);
  }
  drawCurve();

  function showDecision(a) {
    alert = a;
    badge.textContent = a.status;
    badge.className = "badge status-" + a.status;
    if (a.status !== "new") {
      buttons.disabled = true;
      decided.hidden = false;
      const r = a.review;
      if (r || !decided.textContent.trim()) {
        decided.textContent = a.status[0].toUpperCase() + a.status.slice(1) +
          (r ? ` by ${r.user} (${names[r.label] || r.label})` + (r.note ? `: “${r.note}”` : "") : "");
      }
    }
    if (a.spectrogram_url && img.getAttribute("src") !== a.spectrogram_url) {
      img.src = a.spectrogram_url; img.hidden = false;
      document.getElementById("spectrogram-wait").hidden = true;
    }
    if (a.snippet_url && audio.getAttribute("src") !== a.snippet_url && audio.paused) {
      audio.src = a.snippet_url;
    }
    drawCurve();
  }

  async function decide(label) {
    if (buttons.disabled) return;
    buttons.disabled = true;
    conflict.hidden = true;
    const r = await fetch(`/api/alerts/${id}/review/`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": EyeLive.cookie("csrftoken") ||
        (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value},
      body: JSON.stringify({label, note: note.value}),
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      showDecision(body);
      if (data.next_url) setTimeout(() => { location.href = data.next_url; }, 600);
    } else if (r.status === 409) {
      conflict.textContent = body.detail;
      conflict.hidden = false;
      if (body.alert) showDecision(body.alert);
    } else {
      conflict.textContent = body.detail || ("could not save the review: HTTP " + r.status);
      conflict.hidden = false;
      buttons.disabled = false;
    }
  }

  for (const button of buttons.querySelectorAll("button[data-label]")) {
    button.addEventListener("click", () => decide(button.dataset.label));
  }
  const keys = {c: "1", "1": "0_0", "2": "0_1", "3": "0_2"};
  document.addEventListener("keydown", (event) => {
    if (event.target === note || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (keys[key]) { event.preventDefault(); decide(keys[key]); }
    else if (key === "n") { event.preventDefault(); location.href = next.href; }
    else if (key === " " && audio) { event.preventDefault(); if (audio.paused) audio.play(); else audio.pause(); }
  });

  window.eyescreamReview = {live: EyeLive.start({lastId: data.last_id, wsPath: data.ws_path,
    alarmRepeatS: data.alarm_repeat_s, knownIds: () => [id],
    onAlert: (a, kind) => {
      if (a.id === id) {
        if (kind === "updated" && a.status !== "new" && alert.status === "new" && buttons.disabled === false) {
          conflict.textContent = `Meanwhile ${a.review ? a.review.user : "someone"} decided this alert.`;
          conflict.hidden = false;
        }
        showDecision(a);
      } else if ((kind === "created" || kind === "missed") && a.status === "new") {
        EyeLive.toast(`New alert at ${a.location} (${a.device.name})`, "/alerts/" + a.id + "/");
      }
    }})};
})();
