// Starts Swagger UI on /docs (web/apidocs.py): a file, not an inline script, so the page's CSP needs no exception.
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
