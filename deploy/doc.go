// Package deploy holds the files to install lambda-endpoint as a service
// (lambda-endpoint.service, a hardened systemd unit) and the test that keeps
// them valid. It has no Go code of its own.
package deploy
