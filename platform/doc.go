// Package platform is lambda-endpoint's client for the platform's
// PUT {platform-url}/submit route: it delivers one trace's "start" message,
// its numbered base64 chunks of tracer output and its "finished" message.
//
// Delivery never drops a message. Every call retries until the platform
// answers 2xx or the caller's context is done: any other status and every
// transport error is retried with capped exponential backoff and full jitter
// (after the n-th failed attempt, n from 1, sleep uniformly in
// [0, min(RetryMax, RetryMin*2^(n-1))]). A Retry-After
// header on a 429 or 503 answer is honoured as a lower bound on the wait,
// and the wait is then capped at RetryMax, so a platform asking for longer
// pauses is retried every RetryMax. A single attempt is bounded by
// AttemptTimeout; a timed-out attempt is retried like any other failure, so
// the platform may see a message more than once (it must accept exact
// duplicates, as the platformtest receiver does).
//
// Ordering is the caller's job: a Client is safe for concurrent use by many
// goroutines, but the messages of one trace must be sent one after the other
// (Start, then Chunk 0, 1, 2, ..., then Finished), each call returning before
// the next is made.
//
// The request bodies are built by hand (AppendStartBody, AppendChunkBody,
// AppendFinishedBody) into pooled buffers: a chunk's base64 is encoded once
// and the same bytes are re-sent on every retry. The Client owns its
// http.Transport unless Options.HTTPClient is given; CloseIdleConnections
// releases its keep-alive connections at shutdown.
//
// The package does not log; Options.OnRetry lets the caller log or count
// retries.
package platform
