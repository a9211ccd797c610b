// Deployment settings of the dashboard. Served as is by the local app (same origin, local
// identity). For a deployment on a static host (S3 + CloudFront), replace this file:
//   apiBase   — the control API's URL (template output ApiUrl), e.g. "https://abc.execute-api.eu-west-1.amazonaws.com"
//   authToken — the signed-in user's JWT for the HTTP API's authorizer: a string, or a
//               function returning one (e.g. read from your OIDC client's storage).
// Stream URLs come from the API itself (absolute, on the stream Function URL).
window.DISPATCH_REPLAY = {
  apiBase: "",
  authToken: null,
};
