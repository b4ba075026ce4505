// ReDoc over this server's schema, rendered into #redoc.
Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));
