// Package actors is lambda-endpoint's trace runtime: a registry actor and one
// supervised trace actor per trace, built on protoactor-go.
//
// # Who owns what
//
// Runtime.Start does the slow part of a start in its caller's goroutine,
// never in a mailbox: the preflight of the traced binary, and for the
// native engine the plan of its probes (the binary opened once, its
// functions disassembled within bounds). The registry then issues thread
// ids, checks and prepares the start (the caller's deadline, limits,
// template rules, tracer executable, script file: its prepare step), takes
// over the native plan, spawns the trace actor, answers
// running / running-all / kill from the snapshots the trace actors push
// (*traceStatus after every change), and forgets a trace when its actor
// reports it delivered or when the actor terminates (it watches each one
// and handles *actor.Terminated). Shutdown is a request the registry
// answers itself, by message, once no trace is left: nothing polls.
//
// A trace actor owns its run (traceRun): the tracer process, the spool,
// the counters and how the run ended. Only its Receive writes that state,
// so no lock guards it. The blocking work is done by workers, goroutines
// the actor starts and that report back by message, never touching the
// state:
//
//	launcher  creates the spool (fsync) and execs the tracer,  -> *launched
//	          or attaches the native engine's planned probes;
//	          within a deadline, cut off by a kill
//	pump      reads stdout, stages, cuts, appends to the spool -> *chunkSpooled, *spoolFailed, *pumpEnded
//	waiter    collects the tracer's exit                       -> *tracerExited{exit}
//	sender    start and each chunk, acknowledged in the spool  -> *startAcked, *chunkAcked, *allAcked
//	recorder  writes the final state into the spool's meta     -> *finalRecorded
//	finisher  the finished message, then removes the spool     -> *delivered
//
// The tracer is a tracerProc: a bpftrace or stap process (tracer.Process)
// or a trace of the native engine (tracer/native, run in the endpoint's
// process: see native.go). The pump reads its output, the waiter its end,
// and stop, the watchdog and release signal it the same way for both; only
// the launch differs, and the pump filters bpftrace's notices only for
// bpftrace. The native engine's own goroutine (which reads its ring buffer)
// belongs to its trace: the trace's context (cancelled when the actor
// stops for good or the runtime shuts down) and Stop end it; a panic in it
// is recovered by the engine, which detaches every probe, closes the
// output and reports the panic through Wait, so the waiter's exit (code 1,
// the panic in stderr) ends the run failed. The native trace is not
// started again: re-attaching would lose or repeat events, while ending it
// delivers everything read.
//
// After every message the actor "advances": from what is known it works out
// the outstanding steps and makes sure the worker of each one runs. Every
// step is idempotent (the sender resumes at the spool's acknowledged
// chunk, the pump at the spool's end plus the staging file), which is what
// makes restarts safe. The actor's own timers are a one-second tick (the
// watchdog of lasting plus the kill grace, and the place for checks that
// must run while a tracer runs) and the grace after which a tracer's
// stdout that an escaped child holds open is closed. How an exit maps to
// a reason is decided in one function, endReason.
//
// Receive itself does no blocking work: it sends signals (kill(2)), arms
// timers, starts goroutines and sends messages. The registry's start does
// a few stat calls and writes the small script file (O_EXCL, no fsync):
// bounded.
//
// # Supervision
//
// protoactor-go restarts a failed actor by discarding the instance and
// calling the producer again; the message that panicked is dropped. A
// restart of a parent stops all its children first (actorContext's
// handleRestart calls stopAllChildren). So the trace actors are not the
// registry's children: they are spawned through the actor system's root
// with a guardian of their own (actor.WithGuardian(traceStrategy)), and the
// registry watches them. A registry panic then restarts the registry alone;
// its state (traces, snapshots, thread counter, Shutdown waiters) lives in
// registryState, outside the instance, so every trace stays running and
// known. The registry itself runs under a second guardian
// (registryStrategy). Both strategies are one-for-one, restart on any
// panic, at most 10 restarts in 10 s; a trace actor past that is stopped:
// it kills its tracer, closes its spool (delivered by the next start), and
// the registry forgets it on Terminated.
//
// A restarted trace actor gets the same traceRun (the producer closes over
// it) and rebuilds what the dropped message may have carried from the
// process and the spool (resync: the exit from the process, the
// acknowledged position from the spool), then advances. Workers are not
// supervised by protoactor-go (only the mailbox goroutine is): each one
// recovers its own panic and reports it as *workerFailed; the actor starts
// it again (after a short delay if it keeps failing) from durable state.
// No step loses output or sends a duplicate that differs: a resent chunk
// has the number and bytes of the spool, a resent start or finished is the
// same message.
//
// # Embedding
//
// Runtime is the embeddable entry point: construct it with your own
// *actor.ActorSystem, then Start, Running, All, Kill, Subscribe and
// Shutdown. Options.Observer hears the runtime's events (for metrics);
// Options.LastThread continues the thread ids of an earlier process.
package actors
