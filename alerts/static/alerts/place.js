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
  if (data.tile_url) L.tileLayer(data.tile_url, {maxZoom: 20, attribution: data.tile_attribution}).addTo(map);
  else document.getElementById("place-map").classList.add("no-tiles");
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
    if (s && s.floor_plan_url && s.floor_plan_bounds) {
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
  window.eyescreamPlace = {map};
})();
