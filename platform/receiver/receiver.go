package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

// Verifier checks an incoming Authorization header; *auth.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, header string) error
}

// Options configure a Receiver.
type Options struct {
	// Dir is where the traces are written; created (0700) if missing. It
	// must belong to the user the receiver runs as and be writable by no
	// one else (no group or other write bit): New refuses it otherwise.
	Dir string
	// Verifier checks every request's Authorization header; required.
	Verifier Verifier
	// MaxBodyBytes is the largest /submit body accepted (413 beyond);
	// 0 means 64 MiB.
	MaxBodyBytes int64
	// MaxOpenTraces is how many traces keep their files open between
	// messages (two descriptors each); 0 means DefaultMaxOpenTraces.
	MaxOpenTraces int
	// Logger receives one line per refused request and per finished
	// trace; nil discards.
	Logger *slog.Logger
}

// Receiver is the http.Handler of the reference receiver. It is safe for
// concurrent use; requests of different traces run in parallel, those of
// one trace one after the other.
type Receiver struct {
	store   *store
	verify  Verifier
	maxBody int64
	log     *slog.Logger
}

var _ http.Handler = (*Receiver)(nil)

// New returns a Receiver writing to o.Dir. It creates o.Dir (0700) when
// missing and refuses, with an error wrapping ErrUnsafeDir, a directory of
// another user or one its group or others may write. The directory stays
// open for the Receiver's life: every file is opened relative to it.
func New(o Options) (*Receiver, error) {
	if o.Dir == "" {
		return nil, errors.New("no directory given")
	}
	if o.Verifier == nil {
		return nil, errors.New("no authorization verifier given")
	}
	dir, err := openDir(o.Dir)
	if err != nil {
		return nil, err
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{
		store:   newStore(dir, o.MaxOpenTraces),
		verify:  o.Verifier,
		maxBody: o.MaxBodyBytes,
		log:     o.Logger,
	}, nil
}

// Submit applies one parsed message, as PUT /submit does after its checks.
// Errors wrap ErrProtocol for a message the protocol refuses, ErrUnsafeFile
// for a trace file the receiver refuses to open or write (a symbolic link,
// a foreign file in the way); other errors are failures to store.
func (r *Receiver) Submit(m Message) (Result, error) { return r.store.submit(m) }

// Lock takes the directory for this process, one receiver per directory:
// an exclusive flock on DIR/lock, opened like every other file in it
// (relative to the directory, never through a link, created with O_EXCL),
// into which it writes its PID. A lock file already there is reused only
// when it holds nothing but a PID. Errors wrap ErrDirBusy when another
// process holds the directory (naming its PID), ErrUnsafeFile when DIR/lock
// is something else. Closing the returned lock releases it; so does the
// process's exit.
func (r *Receiver) Lock() (io.Closer, error) {
	f, err := lockDir(r.store.dir)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Close closes the trace files the receiver holds open (the directory stays
// open). It may be used again afterwards: each trace is reloaded from disk.
func (r *Receiver) Close() { r.store.close() }

// ServeHTTP answers PUT /submit.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/submit" {
		r.refuse(w, req, http.StatusNotFound, "not found: the receiver answers only PUT /submit")
		return
	}
	if req.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		r.refuse(w, req, http.StatusMethodNotAllowed, "method not allowed: use PUT /submit")
		return
	}
	if err := r.verify.Verify(req.Context(), req.Header.Get("Authorization")); err != nil {
		if errors.Is(err, auth.ErrBusy) {
			w.Header().Set("Retry-After", "1")
			r.refuse(w, req, http.StatusServiceUnavailable, "authorization busy: retry")
			return
		}
		r.log.Warn("refused submit", "remote", req.RemoteAddr, "status", http.StatusUnauthorized, "err", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		r.refuse(w, req, http.StatusUnsupportedMediaType, "the body must be sent as Content-Type: application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.refuse(w, req, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", r.maxBody))
			return
		}
		r.refuse(w, req, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	m, err := ParseMessage(body)
	if err != nil {
		r.refuse(w, req, http.StatusBadRequest, err.Error())
		return
	}
	res, err := r.store.submit(m)
	switch {
	case errors.Is(err, ErrProtocol):
		r.refuse(w, req, http.StatusConflict, fmt.Sprintf("trace %s: %v", m.ID, err))
		return
	case errors.Is(err, ErrUnsafeFile):
		r.log.Error("refusing a file in the directory", "trace_id", m.ID, "kind", m.Kind.String(), "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "storing the message failed: the receiver refuses a file in its directory (its log says which); retry once it is moved away"})
		return
	case err != nil:
		r.log.Error("storing submit", "trace_id", m.ID, "kind", m.Kind.String(), "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "storing the message failed; retry"})
		return
	}
	if m.Kind == Finished && res == Accepted {
		r.log.Info("trace finished", "trace_id", m.ID, "trace_path", m.Trace, "chunks", m.Chunks, "bytes", m.Bytes)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": string(res)})
}

func (r *Receiver) refuse(w http.ResponseWriter, req *http.Request, status int, msg string) {
	r.log.Warn("refused submit", "remote", req.RemoteAddr, "status", status, "err", msg)
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
