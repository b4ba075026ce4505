// A classic script, run before the modules. When one of the dashboard's scripts cannot be
// fetched (the server restarting, a proxy's error page, a dropped connection), the module
// graph fails without a script error and the page would say "Loading…" for ever; it says
// which file failed instead, and that a reload tries again.
window.addEventListener("error", (event) => {
  const el = event.target;
  const src = el instanceof HTMLScriptElement ? el.src
    : el instanceof HTMLLinkElement && el.rel === "modulepreload" ? el.href : null;
  if (!src) return;
  const app = document.getElementById("app");
  if (!app || app.querySelector("#load-failed")) return;
  const p = document.createElement("p");
  p.id = "load-failed";
  p.className = "error";
  p.setAttribute("role", "alert");
  p.textContent = `The dashboard could not load ${new URL(src).pathname}; reload the page to try again.`;
  app.replaceChildren(p);
}, true);
