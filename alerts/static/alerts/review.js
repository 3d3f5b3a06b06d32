/* Review pages: the queue updates live; the detail page decides with buttons or keys. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const table = document.getElementById("alert-table");
  const review = document.getElementById("review");

  function statusRow(tbody, alert) {
    let tr = tbody.querySelector(`tr[data-id="${alert.id}"]`);
    const wanted = table.dataset.status;
    const named = (table.dataset.deviceName || "").toLowerCase();
    const matches = (!wanted || wanted === "all" || wanted === alert.status) &&
      (!table.dataset.site || table.dataset.site === alert.site) &&
      (!named || alert.device.name.toLowerCase().includes(named)) &&
      // a new alert has no verdict: it belongs only where no verdict or reviewer is asked for
      (!table.dataset.label || table.dataset.label === "none") && !table.dataset.reviewer;
    if (!tr) {
      if (!matches) return;
      const empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      tr = document.createElement("tr");
      tr.dataset.id = alert.id;
      tr.innerHTML = "<td><input type=checkbox name=alert form=bulk class=pick></td>" +
        "<td><a></a></td><td><time></time></td><td></td><td></td><td></td><td></td><td class=status></td>" +
        "<td class=reviewer></td><td class=reason></td><td class=reviewed></td>";
      tr.querySelector(".pick").value = alert.id;
      tr.querySelector(".pick").setAttribute("aria-label", "select alert " + alert.id);
      tr.querySelector("a").href = "/alerts/" + alert.id + "/";
      tr.querySelector("a").textContent = alert.id;
      tr.querySelector("time").textContent = EyeLive.formatTime(alert.started_at, true, alert.time_zone);
      tr.querySelector("time").title = alert.time_zone;
      const cells = tr.children;
      cells[3].textContent = alert.site; cells[4].textContent = alert.location;
      cells[5].textContent = alert.device.name; cells[6].textContent = alert.peak_score.toFixed(2);
      tbody.insertBefore(tr, tbody.firstChild);
      tr.classList.add("fresh");
    }
    tr.className = tr.className.replace(/status-\w+/, "") + " status-" + alert.status;
    tr.querySelector(".status").textContent = alert.status;
    const r = alert.review;
    tr.querySelector(".reviewer").textContent = r ? r.user : "";
    tr.querySelector(".reason").textContent = r ? r.label_name + (r.note ? `: “${r.note}”` : "") : "";
    const reviewed = tr.querySelector(".reviewed");
    if ((reviewed.dataset.iso || "") !== (r ? r.created : "")) {  // keep the server's text if same
      reviewed.textContent = r ? EyeLive.formatTime(r.created, true, alert.time_zone) : "";
      reviewed.dataset.iso = r ? r.created : "";
    }
  }

  /* Undo: the last verdict given in this tab can be withdrawn for UNDO_S seconds, also from the
   * next page (auto-advance must not make a mis-key permanent). */
  const UNDO_S = 10;

  function csrf() {
    return EyeLive.cookie("csrftoken") ||
      (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value;
  }

  async function postReview(alertId, body) {
    const r = await fetch(`/api/alerts/${alertId}/review/`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body),
    });
    return {r, body: await r.json().catch(() => ({}))};
  }

  function offerUndo(alert) {
    const offer = {alertId: alert.id, reviewId: alert.review.id, until: Date.now() + UNDO_S * 1000,
      text: `Alert ${alert.id}: ${alert.status} (${alert.review.label_name}).`};
    sessionStorage.setItem("eyescream-undo", JSON.stringify(offer));
    showUndo(offer);
  }

  let undoOffer = null;

  function showUndo(offer) {
    const left = offer.until - Date.now();
    let bar = document.getElementById("undo");
    if (left <= 0) { sessionStorage.removeItem("eyescream-undo"); if (bar) bar.remove(); return; }
    if (!bar) {
      bar = document.createElement("div");
      bar.id = "undo";
      bar.className = "undo";
      bar.innerHTML = '<span class="text"></span> <button type="button" id="undo-button"><kbd>U</kbd> Undo</button>';
      document.body.appendChild(bar);
      bar.querySelector("button").addEventListener("click", () => undo());
    }
    undoOffer = offer;
    bar.querySelector(".text").textContent = offer.text;
    clearTimeout(showUndo.timer);
    showUndo.timer = setTimeout(() => { undoOffer = null; bar.remove(); sessionStorage.removeItem("eyescream-undo"); }, left);
  }

  async function undo() {
    const offer = undoOffer;
    if (!offer) return;
    const bar = document.getElementById("undo");
    const {r, body} = await postReview(offer.alertId, {label: "", replaces: offer.reviewId});
    sessionStorage.removeItem("eyescream-undo");
    undoOffer = null;
    if (r.ok) {
      if (review && Number(review.dataset.id) === offer.alertId) {
        bar.remove();
        window.eyescreamReview.showDecision(body);
      } else {
        location.href = `/alerts/${offer.alertId}/`;
      }
    } else {
      bar.querySelector(".text").textContent = body.detail || ("could not undo: HTTP " + r.status);
      bar.querySelector("button").disabled = true;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key.toLowerCase() === "u" && undoOffer) { event.preventDefault(); undo(); }
  });

  try {
    const saved = JSON.parse(sessionStorage.getItem("eyescream-undo") || "null");
    if (saved) showUndo(saved);
  } catch (e) { sessionStorage.removeItem("eyescream-undo"); }

  if (table) {
    const tbody = table.querySelector("tbody");
    /* Bulk acknowledge: the ticked rows go with the #bulk form (one verdict, one reason). */
    const all = document.getElementById("select-all");
    const count = document.getElementById("selected-count");
    const picked = () => [...tbody.querySelectorAll("input.pick:checked")];
    const recount = () => { count.textContent = picked().length; };
    all.addEventListener("change", () => {
      for (const box of tbody.querySelectorAll("input.pick")) box.checked = all.checked;
      recount();
    });
    tbody.addEventListener("change", (event) => { if (event.target.matches("input.pick")) recount(); });
    document.getElementById("bulk").addEventListener("submit", (event) => {
      const label = document.getElementById("bulk-label").value;
      if (!picked().length || !label) {
        event.preventDefault();
        EyeLive.toast(!picked().length ? "Tick the alerts to acknowledge first." : "Choose a verdict first.");
      }
    });
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
  const change = document.getElementById("change-verdict");
  const history = document.querySelector("#history tbody");
  let replacing = null;  // the verdict being changed (its review id), or null for a first one
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

  // The playhead over the picture's time axis (snippet start .. end), and click to seek there.
  const playhead = document.getElementById("playhead");
  const [axisStart, axisEnd] = data.picture_time_axis || [0, 1];

  function movePlayhead() {
    const ready = audio && audio.duration > 0 && isFinite(audio.duration) && !img.hidden && img.clientWidth;
    playhead.hidden = !ready;
    if (!ready) return;
    const fraction = axisStart + (axisEnd - axisStart) * Math.min(1, audio.currentTime / audio.duration);
    playhead.style.left = (fraction * img.clientWidth) + "px";
    playhead.style.height = img.clientHeight + "px";
    if (!audio.paused) requestAnimationFrame(movePlayhead);
  }

  if (audio) {
    for (const name of ["loadedmetadata", "timeupdate", "seeked", "play"]) audio.addEventListener(name, movePlayhead);
    img.addEventListener("load", movePlayhead);
    window.addEventListener("resize", movePlayhead);
    img.addEventListener("click", (event) => {
      if (!(audio.duration > 0)) return;
      const box = img.getBoundingClientRect();
      const fraction = ((event.clientX - box.left) / box.width - axisStart) / (axisEnd - axisStart);
      audio.currentTime = Math.max(0, Math.min(1, fraction)) * audio.duration;
      movePlayhead();
    });
  }

  function addHistory(r) {
    if (!r || history.querySelector(`tr[data-review-id="${r.id}"]`)) return;
    const empty = history.querySelector("tr.empty");
    if (empty) empty.remove();
    const tr = document.createElement("tr");
    tr.dataset.reviewId = r.id;
    tr.innerHTML = "<td><time></time></td><td></td><td></td><td></td>";
    tr.querySelector("time").textContent = EyeLive.formatTime(r.created, true, alert.time_zone);
    tr.children[1].textContent = r.user;
    tr.children[2].textContent = r.label_name;
    tr.children[3].textContent = r.note;
    history.insertBefore(tr, history.firstChild);
  }

  function showDecision(a) {
    alert = a;
    badge.textContent = a.status;
    badge.className = "badge status-" + a.status;
    addHistory(a.review);
    change.hidden = a.status === "new";
    if (a.status === "new") {
      replacing = null;
      decided.hidden = true;
      buttons.disabled = false;
    } else {
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
    const revising = replacing;
    const {r, body} = await postReview(id, revising === null ? {label, note: note.value} :
      {label, note: note.value, replaces: revising});
    if (r.ok) {
      replacing = null;
      showDecision(body);
      offerUndo(body);
      if (data.next_url && revising === null) setTimeout(() => { location.href = data.next_url; }, 600);
    } else if (r.status === 409) {
      replacing = null;
      conflict.textContent = body.detail;
      conflict.hidden = false;
      if (body.alert) showDecision(body.alert);
    } else {
      conflict.textContent = body.detail || ("could not save the review: HTTP " + r.status);
      conflict.hidden = false;
      buttons.disabled = false;
    }
  }

  change.addEventListener("click", () => {
    if (!alert.review) return;
    replacing = alert.review.id;
    buttons.disabled = false;
    change.hidden = true;
    note.focus();
  });

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

  window.eyescreamReview = {showDecision, live: EyeLive.start({lastId: data.last_id, wsPath: data.ws_path,
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
