/* A plain listing of the OpenAPI schema: every path, method and parameter (no CDN viewer). */
(async function () {
  "use strict";
  const box = document.getElementById("endpoints");
  const r = await fetch("/api/schema/?format=json", {credentials: "same-origin"});
  if (!r.ok) { box.textContent = "Could not load the schema: HTTP " + r.status; return; }
  const schema = await r.json();
  box.textContent = "";
  for (const [path, ops] of Object.entries(schema.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const section = document.createElement("section");
      section.className = "endpoint";
      const h = document.createElement("h3");
      h.textContent = method.toUpperCase() + " " + path;
      section.appendChild(h);
      if (op.description) {
        const p = document.createElement("p"); p.textContent = op.description; section.appendChild(p);
      }
      const params = (op.parameters || []).map((q) => `${q.name} (${q.in}): ${q.description || ""}`);
      if (params.length) {
        const ul = document.createElement("ul");
        for (const text of params) { const li = document.createElement("li"); li.textContent = text; ul.appendChild(li); }
        section.appendChild(ul);
      }
      box.appendChild(section);
    }
  }
})();
