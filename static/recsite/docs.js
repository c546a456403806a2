// recsite developer docs: starts the vendored Swagger UI on /docs/reference/ with the
// schema URL the page names (a file, not an inline script: the page's CSP has none).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") return;
  window.SwaggerUIBundle({
    url: root.getAttribute("data-schema-url"),
    domNode: root,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    persistAuthorization: false, // a pasted secret key is not kept in this browser's storage
    tryItOutEnabled: false,
  });
})();
