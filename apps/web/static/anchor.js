// Anchor's one script: keyboard shortcuts. Every control works without it
// (live refresh and fragment swaps are htmx's, declared in the markup).
// No eval, no inline code.
"use strict";

// Keyboard shortcuts, ignored while typing in a field.
const rows = () => [...document.querySelectorAll("table.tickets tbody tr, table.queue tbody tr")];
let current = -1;
let pendingG = false;
const focusRow = (index) => {
  const all = rows();
  if (all.length === 0) return;
  current = Math.max(0, Math.min(index, all.length - 1));
  all.forEach((row, i) => row.classList.toggle("current", i === current));
  all[current].querySelector("td a")?.focus();
};
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  const help = document.getElementById("shortcuts");
  if (pendingG) {
    pendingG = false;
    if (event.key === "a") {
      const link = document.querySelector('header nav a[href$="/admin"]');
      if (link) window.location.assign(link.href);
    }
    if (event.key === "o") {
      const link = document.querySelector('header nav a[href$="/ops"]');
      if (link) window.location.assign(link.href);
    }
    if (event.key === "c") {
      const link = document.querySelector('header nav a[href$="/console"]');
      if (link) window.location.assign(link.href);
    }
    return;
  }
  switch (event.key) {
    case "?":
      if (help) { help.open = !help.open; if (help.open) help.scrollIntoView(); }
      break;
    case "Escape":
      if (help) help.open = false;
      break;
    case "/": {
      const field = document.querySelector("#f-q, form.filters select");
      if (field) { event.preventDefault(); field.focus(); }
      break;
    }
    case "j": focusRow(current + 1); break;
    case "k": focusRow(current - 1); break;
    case "x": {
      const box = rows()[current]?.querySelector('input[type="checkbox"]');
      if (box) box.checked = !box.checked;
      break;
    }
    case "g": pendingG = true; break;
    default: break;
  }
});
