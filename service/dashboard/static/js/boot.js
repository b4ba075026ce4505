// A classic script, run before the modules. When one of the dashboard's scripts cannot be
// fetched (the server restarting, a proxy's error page, a dropped connection), the module
// graph fails without a script error and the page would say "Loading…" for ever; it says
// which file failed instead, and that a reload tries again. A preloaded module that fails
// names itself; main.js's own error (its graph failed) is named only while none has.
const failed = { files: new Set(), entry: null };

window.addEventListener("error", (event) => {
  const el = event.target;
  if (el instanceof HTMLLinkElement && el.rel === "modulepreload") {
    failed.files.add(new URL(el.href).pathname);
  } else if (el instanceof HTMLScriptElement && el.src) {
    failed.entry = new URL(el.src).pathname;
  } else {
    return;
  }
  const app = document.getElementById("app");
  if (!app) return;
  const names = failed.files.size ? [...failed.files].join(", ") : failed.entry;
  const p = document.getElementById("load-failed") || document.createElement("p");
  p.id = "load-failed";
  p.className = "error";
  p.setAttribute("role", "alert");
  p.textContent = `The dashboard could not load ${names}; reload the page to try again.`;
  if (!p.isConnected) app.replaceChildren(p);
}, true);
