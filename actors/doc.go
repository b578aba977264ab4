// Package actors is lambda-endpoint's trace runtime: a registry actor and one
// supervised trace actor per running trace, built on protoactor-go.
//
// The registry issues thread ids, validates and prepares a start (template
// checks, tracer script, limits), spawns a trace actor as its child, answers
// running / running-all / kill, and forgets a trace once everything it owed
// the platform has been delivered.
//
// A trace actor owns one trace: the tracer subprocess, the spool its output
// is cut into, and the submit loop that delivers the spool to the platform.
// The state that must outlive the actor instance (the process handle, the
// spool, counters, the chunk numbering) lives in a run value that the actor's
// producer closes over, so when the registry's one-for-one strategy restarts a
// trace actor after a panic, the new instance takes the same subprocess and
// spool and the chunk numbering continues without a gap.
//
// The goroutines of a run (the output pump, the sender, the waiter) are owned
// by the Runtime: they stop when their work is done or when the Runtime is
// shut down, and they talk to the actors only through messages.
//
// Runtime is the embeddable entry point: construct it with your own
// *actor.ActorSystem, then Start, Running, All, Kill, Subscribe and Shutdown.
package actors
