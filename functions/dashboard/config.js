// Deployment settings of the dashboard. Served as is by the local app (same origin, local
// identity, nobody signs in). `make deploy` replaces it on the hosted dashboard with the
// stack's own (functions/local/publish.py):
//   apiBase — "" : the API and the stream share the page's origin (CloudFront routes them)
//   auth    — { issuer, clientId, scopes }: the OpenID Connect sign-in the HTTP API's JWT
//             authorizer trusts (auth.js); absent locally
window.DISPATCH_REPLAY = {
  apiBase: "",
};
