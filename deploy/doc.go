// Package deploy holds the files to install lambda-endpoint as a service
// (lambda-endpoint.service, a hardened systemd unit with Delegate=yes, which
// `make install` / scripts/install puts in place with the binary and a
// generated /etc/lambda-endpoint/lambda.toml) and the test that keeps them
// valid. It has no Go code of its own; tests/install_test.go checks the
// installation itself.
package deploy
