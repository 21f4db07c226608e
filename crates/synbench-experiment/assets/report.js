// synbench report.html: sorting, filtering and selection. The page reads without it.
(() => {
  "use strict";
  const board = document.getElementById("board");
  if (board) {
    const body = board.tBodies[0];
    const heads = [...board.tHead.rows[0].cells];
    heads.forEach((th, col) => {
      const button = th.querySelector("button");
      if (!button) return;
      const numeric = th.dataset.kind === "num";
      // Scores and speeds read best high first; rank and text low first.
      const firstUp = !numeric || col === 1;
      button.addEventListener("click", () => {
        const now = th.getAttribute("aria-sort");
        const up = now ? now === "descending" : firstUp;
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        // A number cell sorts by its first text (the value above its interval); "—" and blanks go last.
        const key = (row) => {
          const cell = row.cells[col];
          if (!numeric) return cell.textContent.trim().toLowerCase();
          const v = parseFloat(cell.firstChild ? cell.firstChild.textContent : "");
          return Number.isFinite(v) ? v : null;
        };
        const rows = [...body.rows];
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const tie = Number(a.dataset.row) - Number(b.dataset.row);
          if (x === null || x === "" || y === null || y === "") {
            const nx = x === null || x === "", ny = y === null || y === "";
            return nx && ny ? tie : (nx ? 1 : -1);
          }
          const d = numeric ? x - y : x.localeCompare(y);
          return (up ? d : -d) || tie;
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
    const filter = document.getElementById("filter");
    const shown = document.getElementById("shown");
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      let n = 0;
      for (const row of body.rows) {
        const hit = !q || row.dataset.model.includes(q) || row.dataset.family.includes(q);
        row.hidden = !hit;
        n += hit ? 1 : 0;
      }
      shown.textContent = q ? `${n} of ${body.rows.length} rows shown` : "";
    });
    const overlay = document.querySelector("svg.overlay");
    const legend = document.getElementById("overlay-legend");
    const palette = overlay ? overlay.dataset.palette.split(" ") : [];
    const boxes = new Map([...document.querySelectorAll("input.pick")].map((b) => [b.dataset.curve, b]));
    const recolour = () => {
      let i = 0;
      for (const item of legend.children) {
        const id = item.dataset.curve;
        const on = boxes.get(id).checked;
        const layer = overlay.querySelector(`use[data-curve="${id}"]`);
        layer.classList.toggle("off", !on);
        item.classList.toggle("off", !on);
        if (on) {
          const c = palette[i++ % palette.length];
          layer.style.color = c;
          item.querySelector(".sw").style.background = c;
        }
      }
    };
    if (overlay && legend) boxes.forEach((b) => b.addEventListener("change", recolour));
  }
  const threshold = document.getElementById("width-t");
  if (threshold) {
    threshold.addEventListener("change", () => {
      for (const f of document.querySelectorAll("svg.wfig")) f.classList.toggle("off", f.dataset.t !== threshold.value);
    });
  }
  const openTarget = () => {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id && document.getElementById(id);
    const details = target && target.querySelector("details");
    if (details) details.open = true;
  };
  window.addEventListener("hashchange", openTarget);
  // A link to a model's section opens it at once (hashchange comes a task later).
  for (const link of document.querySelectorAll('a[href^="#m-"]')) {
    link.addEventListener("click", () => {
      const details = document.querySelector(`${link.getAttribute("href")} details`);
      if (details) details.open = true;
    });
  }
  openTarget();
  window.addEventListener("beforeprint", () => document.querySelectorAll("details").forEach((d) => { d.open = true; }));
})();
