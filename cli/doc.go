// Package cli is the client side of lambda-endpoint's command line: the
// "templates" and "traces" commands, which speak the endpoint's REST API
// with the Authorization header computed from the config's endpoint-uuid
// and secret. Client is the small API client they use; Templates and Traces
// run one command line each and return errors for the caller (cmd) to
// print. The package does not log.
package cli
