/* Place a site or location by clicking on the map (lat/lon) or on the floor plan (x/y). */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const lat = document.getElementById("id_latitude");
  const lng = document.getElementById("id_longitude");
  const x = document.getElementById("id_x");
  const y = document.getElementById("id_y");
  const siteSelect = document.getElementById("id_site");
  const map = L.map("place-map");
  const mapBox = document.getElementById("place-map");
  if (data.tile_url) {  // tiles that fail leave the plain grid (as on the live map)
    const tiles = L.tileLayer(data.tile_url, {maxZoom: 20, attribution: data.tile_attribution});
    let ok = 0;
    tiles.on("loading", () => { ok = 0; });
    tiles.on("tileload", () => { ok += 1; mapBox.classList.remove("no-tiles"); });
    tiles.on("tileerror", () => { if (!ok) mapBox.classList.add("no-tiles"); });
    tiles.addTo(map);
  } else {
    mapBox.classList.add("no-tiles");
  }
  let marker = null;
  let overlay = null;

  function setMarker(latlng) {
    if (marker) marker.setLatLng(latlng);
    else marker = L.marker(latlng, {icon: L.divIcon({className: "dev-marker dev-online", iconSize: [22, 22], html: '<span class="dot"></span>'})}).addTo(map);
  }

  function asText(text) {  // a name as text, never as HTML
    const span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  for (const other of data.others || []) {
    if (other.latlng[0] !== null) {
      L.circleMarker(other.latlng, {radius: 5, color: "#777"}).bindTooltip(asText(other.name)).addTo(map);
    }
  }

  function site() {
    if (data.site) return data.site;
    return siteSelect && data.sites ? data.sites[siteSelect.value] : null;
  }

  function showSite() {
    const s = site();
    if (overlay) { overlay.remove(); overlay = null; }
    const box = document.getElementById("plan-box");
    if (s && s.floor_plan_url && s.floor_plan_bounds && !document.getElementById("id_floor_plan_bounds")) {
      overlay = L.imageOverlay(s.floor_plan_url, s.floor_plan_bounds, {opacity: 0.8}).addTo(map);
      if (box) { box.hidden = false; document.getElementById("plan").src = s.floor_plan_url; }
    } else if (box) {
      box.hidden = true;
    }
    if (lat.value && lng.value) {
      setMarker([+lat.value, +lng.value]);
      map.setView([+lat.value, +lng.value], 17);
    } else if (s && s.floor_plan_bounds) {
      map.fitBounds(s.floor_plan_bounds);
    } else if (s && s.latitude !== null) {
      map.setView([s.latitude, s.longitude], 17);
    } else {
      map.setView([20, 0], 2);
    }
  }

  map.on("click", (event) => {
    lat.value = event.latlng.lat.toFixed(7);
    lng.value = event.latlng.lng.toFixed(7);
    setMarker(event.latlng);
    lat.dispatchEvent(new Event("change"));
  });

  const plan = document.getElementById("plan");
  if (plan && x && y) {
    const dot = document.getElementById("plan-dot");
    const showDot = () => {
      if (x.value === "" || y.value === "") return;
      dot.hidden = false;
      dot.style.left = (x.value * 100) + "%";
      dot.style.top = (y.value * 100) + "%";
    };
    plan.addEventListener("click", (event) => {
      const box = plan.getBoundingClientRect();
      x.value = ((event.clientX - box.left) / box.width).toFixed(4);
      y.value = ((event.clientY - box.top) / box.height).toFixed(4);
      showDot();
    });
    showDot();
  }
  if (siteSelect) siteSelect.addEventListener("change", showSite);
  showSite();

  /* Floor-plan bounds (site page): two draggable corners and a dashed box instead of typed
   * JSON; the hidden field holds [[south, west], [north, east]]. */
  const boundsInput = document.getElementById("id_floor_plan_bounds");
  let corners = null;
  let setBounds = null;
  if (boundsInput) {
    const text = document.getElementById("bounds-text");
    const fileInput = document.getElementById("id_floor_plan");
    let planUrl = data.plan_url || null;  // the site's stored plan, or the file just chosen
    let box = null;
    let plan = null;
    const cornerIcon = L.divIcon({className: "corner-marker", iconSize: [16, 16]});
    const round = (v) => Math.round(v * 1e7) / 1e7;

    function current() {
      try { return JSON.parse(boundsInput.value || "null"); } catch (e) { return null; }
    }

    function draw(bounds) {
      if (box) { box.remove(); box = null; }
      if (plan) { plan.remove(); plan = null; }
      if (corners) { corners.forEach((m) => m.remove()); corners = null; }
      if (!bounds) { boundsInput.value = ""; text.textContent = "not placed"; return; }
      const [[s, w], [n, e]] = bounds;
      const sw = [Math.min(s, n), Math.min(w, e)], ne = [Math.max(s, n), Math.max(w, e)];
      const value = [[round(sw[0]), round(sw[1])], [round(ne[0]), round(ne[1])]];
      boundsInput.value = JSON.stringify(value);
      text.textContent = `south ${value[0][0]}, west ${value[0][1]}, north ${value[1][0]}, east ${value[1][1]}`;
      if (planUrl) plan = L.imageOverlay(planUrl, value, {opacity: 0.7}).addTo(map);
      box = L.rectangle(value, {color: "#0b5cad", weight: 2, dashArray: "6 4", fill: false,
        interactive: false}).addTo(map);
      corners = [sw, ne].map((corner) => {
        const m = L.marker(corner, {draggable: true, icon: cornerIcon, title: "drag this corner"}).addTo(map);
        m.on("dragend", () => draw(corners.map((c) => [c.getLatLng().lat, c.getLatLng().lng])));
        return m;
      });
    }

    document.getElementById("bounds-fit").addEventListener("click", () => {
      const view = map.getBounds().pad(-0.2);
      draw([[view.getSouth(), view.getWest()], [view.getNorth(), view.getEast()]]);
    });
    document.getElementById("bounds-clear").addEventListener("click", () => draw(null));
    if (fileInput) {
      fileInput.addEventListener("change", () => {
        if (fileInput.files.length) planUrl = URL.createObjectURL(fileInput.files[0]);
        draw(current());
      });
    }
    setBounds = draw;
    const start = current();
    draw(start);
    if (start) map.fitBounds(start, {padding: [30, 30]});
  }
  // setBounds: the picker's corners put where given (what a drag ends with), for scripts.
  window.eyescreamPlace = {map, corners: () => corners, setBounds};
})();
