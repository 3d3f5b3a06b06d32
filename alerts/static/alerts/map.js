/* The live map: device markers by state, alert list, toast, optional sound, all over EyeLive. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const map = L.map("map", {zoomControl: true, attributionControl: true});
  if (data.tile_url) {
    L.tileLayer(data.tile_url, {maxZoom: 20, attribution: data.tile_attribution}).addTo(map);
  } else {
    document.getElementById("map").classList.add("no-tiles");
  }
  for (const site of data.sites) {
    if (site.floor_plan_url && site.floor_plan_bounds) {
      L.imageOverlay(site.floor_plan_url, site.floor_plan_bounds, {opacity: 0.9}).addTo(map);
    }
  }

  const devices = new Map();   // id -> {info, marker, newAlerts: Set}
  const alerts = new Map();    // id -> alert
  const list = document.getElementById("alert-list");
  const deviceList = document.getElementById("device-list");
  const sound = document.getElementById("sound-on");
  sound.checked = localStorage.getItem("eyescream-sound") === "1";
  sound.addEventListener("change", () => localStorage.setItem("eyescream-sound", sound.checked ? "1" : "0"));

  function stateOf(dev) {
    if (dev.newAlerts.size) return "alerting";
    return dev.info.state === "online" ? "online" : "offline";
  }

  function icon(state) {
    return L.divIcon({className: "dev-marker dev-" + state, iconSize: [22, 22],
      html: '<span class="dot"></span><span class="ring"></span>'});
  }

  function refreshDevice(dev) {
    const state = stateOf(dev);
    if (dev.marker) {
      dev.marker.setIcon(icon(state));
      const el = dev.marker.getElement();
      if (el) { el.dataset.deviceId = dev.info.id; el.dataset.state = state; }
    }
    if (dev.row) {
      dev.row.dataset.state = state;
      dev.row.querySelector(".state").textContent = state;
    }
  }

  // Names are the admins' text: put into the page as text, never as HTML.
  function devicePopup(info) {
    const box = document.createElement("div");
    const name = document.createElement("b");
    name.textContent = info.name;
    box.append(name, document.createElement("br"), `${info.site} / ${info.location}`);
    return box;
  }

  const bounds = [];
  for (const info of data.devices) {
    const dev = {info, marker: null, newAlerts: new Set(), row: null};
    if (info.latitude !== null && info.longitude !== null) {
      dev.marker = L.marker([info.latitude, info.longitude], {icon: icon("offline"), title: info.name})
        .bindPopup(devicePopup(info)).addTo(map);
      bounds.push([info.latitude, info.longitude]);
    }
    const row = document.createElement("li");
    row.className = "device";
    row.dataset.deviceId = info.id;
    row.innerHTML = `<span class="state"></span> <b></b> <small></small>`;
    row.querySelector("b").textContent = info.name;
    row.querySelector("small").textContent = `${info.site} / ${info.location}`;
    deviceList.appendChild(row);
    dev.row = row;
    devices.set(info.id, dev);
  }
  for (const site of data.sites) {
    if (site.floor_plan_bounds) bounds.push(...site.floor_plan_bounds);
    else if (site.latitude !== null && site.longitude !== null) bounds.push([site.latitude, site.longitude]);
  }
  if (bounds.length) map.fitBounds(bounds, {padding: [40, 40], maxZoom: 18});
  else map.setView([20, 0], 2);

  function fmtTime(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : "";
  }

  function renderAlert(alert, fresh) {
    let li = list.querySelector(`li[data-id="${alert.id}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = alert.id;
      li.innerHTML = `<a><span class="when"></span> <b class="where"></b>
        <span class="score"></span> <span class="status"></span></a>`;
      const after = [...list.children].find((el) => Number(el.dataset.id) < alert.id);
      list.insertBefore(li, after || null);
    }
    li.className = "alert status-" + alert.status + (fresh ? " fresh" : "");
    li.querySelector("a").href = "/alerts/" + alert.id + "/";
    li.querySelector(".when").textContent = fmtTime(alert.started_at);
    li.querySelector(".where").textContent = `${alert.location} (${alert.device.name})`;
    li.querySelector(".score").textContent = (alert.peak_score * 100).toFixed(0) + "%";
    li.querySelector(".status").textContent = alert.status;
    while (list.children.length > 100) list.lastElementChild.remove();
  }

  function trackStatus(alert) {
    const dev = devices.get(alert.device.id);
    if (!dev) return false;
    const before = stateOf(dev);
    if (alert.status === "new") dev.newAlerts.add(alert.id);
    else dev.newAlerts.delete(alert.id);
    refreshDevice(dev);
    return before !== stateOf(dev);
  }

  function beep() {
    if (!sound.checked) return;
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain).connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no audio output */ }
  }

  function pulse(alert) {
    const dev = devices.get(alert.device.id);
    if (dev && dev.marker) {
      const el = dev.marker.getElement();
      if (el) { el.classList.remove("pulse"); void el.offsetWidth; el.classList.add("pulse"); }
    }
  }

  for (const alert of data.alerts.slice().reverse()) { alerts.set(alert.id, alert); renderAlert(alert, false); }
  // Which devices are alerting: every new alert, not only the recent ones shown in the list.
  for (const info of data.devices) for (const id of info.new_alerts) devices.get(info.id).newAlerts.add(id);
  for (const dev of devices.values()) refreshDevice(dev);

  const arrivals = {};  // alert id -> Date.now() when it first reached this page

  function onAlert(alert, kind) {
    const isNew = !alerts.has(alert.id);
    if (isNew) arrivals[alert.id] = {at: Date.now(), kind};
    alerts.set(alert.id, alert);
    renderAlert(alert, isNew);
    trackStatus(alert);
    if (isNew && alert.status === "new") {
      pulse(alert);
      beep();
      EyeLive.toast(`Scream at ${alert.location} (${alert.device.name}) ${fmtTime(alert.started_at)}` +
        (kind === "missed" ? " — missed while offline" : ""), "/alerts/" + alert.id + "/");
    }
  }

  function onDevicesOffline(ids) {
    for (const id of ids) {
      const dev = devices.get(id);
      if (dev) { dev.info.state = "offline"; refreshDevice(dev); }
    }
  }

  // Online/offline comes from the devices' health rows (written about once a second).
  async function refreshDevices() {
    try {
      const r = await fetch("/api/devices/", {credentials: "same-origin"});
      if (!r.ok) return;
      for (const row of await r.json()) {
        const dev = devices.get(row.id);
        if (dev && dev.info.state !== row.connection_state) {
          dev.info.state = row.connection_state;
          refreshDevice(dev);
        }
      }
    } catch (e) { /* offline: the next round tries again */ }
  }
  setInterval(refreshDevices, 15000);

  window.eyescreamMap = {map, devices, alerts, arrivals,
    live: EyeLive.start({lastId: data.last_id, wsPath: data.ws_path, onAlert, onDevicesOffline})};
})();
