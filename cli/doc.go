// Package cli is the client side of lambda-endpoint's command line: the
// "templates" and "traces" commands, which speak the endpoint's REST API
// with the Authorization header computed from the config's endpoint-uuid
// and secret. Client is the small API client they use; Templates and Traces
// run one command line each and return errors for the caller (cmd) to
// print. The package does not log.
//
// The endpoint's URL is http://{server.listen} of the config (https:// with
// server.tls-cert and server.tls-key, that certificate trusted), or
// --endpoint; --ca adds trusted roots for an https:// endpoint. A request
// that does not reach the endpoint is a *ConnectError that says what to
// check (is serve running, --ca, the URL's scheme); a non-2xx answer is an
// *APIError. "traces start --watch" and "traces watch PATH..." end with an
// *EndError (joined, one per trace) when a trace ended for a reason other
// than completed, killed or timed-out; "traces history" and "traces
// describe" read the endpoint's run history. A wrong flag or command is
// answered with the closest one.
package cli
