// Progressive enhancement only: every page works without it.
// 1. Selects marked data-autosubmit submit their (GET) form when changed.
// 2. GET forms leave empty fields out of the URL, so shared links stay short.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.requestSubmit();
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "get") return;
  for (const el of Array.from(form.elements)) {
    if ((el instanceof HTMLInputElement || el instanceof HTMLSelectElement) && el.name && el.value === "") {
      el.disabled = true;
    }
  }
  // Re-enable after navigation starts (back/forward cache keeps the page).
  setTimeout(() => { for (const el of Array.from(form.elements)) el.disabled = false; }, 0);
});
