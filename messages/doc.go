// Package messages holds the plain data structs that lambda-endpoint's
// components exchange: the trace template as the API and the store see it,
// the running-trace view, and the messages the registry and trace actors send
// each other and their callers.
//
// The structs carry no behaviour. Every message is sent as a pointer and
// treated as immutable once sent; slices inside a message belong to the
// receiver and must not be modified by the sender afterwards.
package messages
