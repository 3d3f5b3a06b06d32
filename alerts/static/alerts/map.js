/* The live map: device markers by state, alert list, toast, optional sound, all over EyeLive. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const map = L.map("map", {zoomControl: true, attributionControl: true});

  /* Tiles are a backdrop, never a requirement: with none configured, or when they fail to load
   * (no internet, tile server down), the map shows a plain grid (and the sites' floor plans)
   * under the same device markers, and says that tiles are unavailable. */
  const tileStatus = L.control({position: "topright"});
  tileStatus.onAdd = () => {
    const box = L.DomUtil.create("div", "tile-status");
    box.id = "tile-status";
    box.hidden = true;
    return box;
  };
  tileStatus.addTo(map);

  function tilesUnavailable(why) {
    const box = document.getElementById("tile-status");
    document.getElementById("map").classList.toggle("no-tiles", Boolean(why));
    box.hidden = !why;
    box.textContent = why ? why + " Device positions are shown on a plain grid." : "";
  }

  if (data.tile_url) {
    const tiles = L.tileLayer(data.tile_url, {maxZoom: 20, attribution: data.tile_attribution});
    let ok = 0;
    tiles.on("loading", () => { ok = 0; });
    tiles.on("tileload", () => { ok += 1; tilesUnavailable(""); });
    tiles.on("tileerror", () => {
      if (!ok) tilesUnavailable("Map tiles are unavailable (they could not be loaded).");
    });
    tiles.addTo(map);
  } else {
    tilesUnavailable("No map tiles are configured.");
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

  function stateOf(dev) {
    if (dev.info.enabled === false) return "disabled";
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

  // The device's name next to its marker, as text (never HTML).
  function markerLabel(info) {
    const label = document.createElement("span");
    label.textContent = info.name;
    return label;
  }

  // What the marker colours mean.
  const legend = L.control({position: "bottomleft"});
  legend.onAdd = () => {
    const box = L.DomUtil.create("div", "map-legend");
    box.id = "legend";
    for (const state of ["online", "offline", "alerting", "disabled"]) {
      const row = L.DomUtil.create("div", "dev-" + state, box);
      L.DomUtil.create("span", "swatch", row);
      row.append(" " + state);
    }
    return box;
  };
  legend.addTo(map);

  const bounds = [];

  // A device's marker (where it has a place) and its row in the list, kept to its latest info.
  function placeDevice(info) {
    let dev = devices.get(info.id);
    if (!dev) {
      dev = {info, marker: null, newAlerts: new Set(info.new_alerts || []), row: null};
      const row = document.createElement("li");
      row.className = "device";
      row.dataset.deviceId = info.id;
      row.innerHTML = `<span class="state"></span> <b></b> <small></small>`;
      deviceList.appendChild(row);
      dev.row = row;
      devices.set(info.id, dev);
    }
    dev.info = info;
    dev.newAlerts = new Set(info.new_alerts || []);
    dev.row.querySelector("b").textContent = info.name;
    dev.row.querySelector("small").textContent = `${info.site} / ${info.location}`;
    const placed = info.latitude !== null && info.longitude !== null;
    if (placed && !dev.marker) {
      dev.marker = L.marker([info.latitude, info.longitude], {icon: icon(stateOf(dev)), title: info.name})
        .bindPopup(devicePopup(info))
        .bindTooltip(markerLabel(info), {permanent: true, direction: "right", offset: [12, 0], className: "dev-label"})
        .addTo(map);
    } else if (placed) {
      dev.marker.setLatLng([info.latitude, info.longitude]).setPopupContent(devicePopup(info))
        .setTooltipContent(markerLabel(info));
    } else if (dev.marker) {
      dev.marker.remove(); dev.marker = null;
    }
    refreshDevice(dev);
    return dev;
  }

  function removeDevice(id) {
    const dev = devices.get(id);
    if (!dev) return;
    if (dev.marker) dev.marker.remove();
    dev.row.remove();
    devices.delete(id);
  }

  for (const info of data.devices) {
    placeDevice(info);
    if (info.latitude !== null && info.longitude !== null) bounds.push([info.latitude, info.longitude]);
  }
  for (const site of data.sites) {
    if (site.floor_plan_bounds) bounds.push(...site.floor_plan_bounds);
    else if (site.latitude !== null && site.longitude !== null) bounds.push([site.latitude, site.longitude]);
  }
  if (bounds.length) map.fitBounds(bounds, {padding: [40, 40], maxZoom: 18});
  else map.setView([20, 0], 2);

  const fmtTime = (iso, zone) => EyeLive.formatTime(iso, false, zone);

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
    li.querySelector(".when").textContent = fmtTime(alert.started_at, alert.time_zone);
    li.querySelector(".where").textContent = `${alert.location} (${alert.device.name})`;
    li.querySelector(".score").textContent = (alert.peak_score * 100).toFixed(0) + "%";
    li.dataset.open = alert.open ? "1" : "0";
    li.querySelector(".status").textContent = alert.status + (alert.open ? " · ongoing" : "");
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

  function pulse(alert) {
    const dev = devices.get(alert.device.id);
    if (dev && dev.marker) {
      const el = dev.marker.getElement();
      if (el) { el.classList.remove("pulse"); void el.offsetWidth; el.classList.add("pulse"); }
    }
  }

  for (const alert of data.alerts.slice().reverse()) { alerts.set(alert.id, alert); renderAlert(alert, false); }

  const arrivals = {};  // alert id -> Date.now() when it first reached this page

  function onAlert(alert, kind) {
    const isNew = !alerts.has(alert.id);
    if (isNew) arrivals[alert.id] = {at: Date.now(), kind};
    alerts.set(alert.id, alert);
    renderAlert(alert, isNew);
    trackStatus(alert);
    if (isNew && alert.status === "new" && kind !== "snapshot") {
      pulse(alert);
      EyeLive.toast(`Scream at ${alert.location} (${alert.device.name}) ${fmtTime(alert.started_at, alert.time_zone)}` +
        (kind === "missed" ? " — missed while offline" : ""), "/alerts/" + alert.id + "/");
    }
  }

  function onDevicesOffline(ids) {
    for (const id of ids) {
      const dev = devices.get(id);
      if (dev) { dev.info.state = "offline"; refreshDevice(dev); }
    }
  }

  // The server's state as of the snapshot: every device (which alerts it still waits on), the
  // alerts that need attention, and the page's own alerts as they are now.
  function onSnapshot(snap, kindOf) {
    const listed = new Set();
    for (const info of snap.devices) { placeDevice(info); listed.add(info.id); }
    for (const id of [...devices.keys()]) if (!listed.has(id)) removeDevice(id);
    for (const alert of snap.alerts.slice().reverse()) onAlert(alert, kindOf(alert));
    for (const id of snap.removed) {
      alerts.delete(id);
      const li = list.querySelector(`li[data-id="${id}"]`);
      if (li) li.remove();
    }
  }

  function knownIds() {
    return [...list.children].map((li) => Number(li.dataset.id));
  }

  window.eyescreamMap = {map, devices, alerts, arrivals,
    live: EyeLive.start({lastId: data.last_id, wsPath: data.ws_path, alarmRepeatS: data.alarm_repeat_s,
      onAlert, onSnapshot, knownIds, onDevicesOffline, onDevice: placeDevice, onDeviceRemoved: removeDevice})};
})();
