// Swagger UI over this server's schema. validatorUrl: null, or it loads a badge from
// validator.swagger.io (an off-origin request the CSP refuses).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
