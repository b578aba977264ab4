package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// TraceFoundHeader is the header of the POST /trace/kill answer that says
// whether a trace (running, or still delivering) was at killPath: "true",
// or "false" when nothing was and nothing was killed. The body is "Killed"
// either way, as the seed prescribes.
const TraceFoundHeader = "Lambda-Trace-Found"

type startResponse struct {
	Thread   int64  `json:"thread"`
	FilePath string `json:"filePath"`
}

func (s *Server) startTrace(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req startRequest
	if err := readJSON(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		s.writeFailure(w, r, err)
		return
	}
	typ, err := req.TraceT.parse("traceT")
	if err != nil {
		s.writeFailure(w, r, err)
		return
	}
	switch {
	case req.TraceID == nil:
		s.writeFailure(w, r, badRequest("traceId: missing"))
		return
	case req.Lasting == nil:
		s.writeFailure(w, r, badRequest("lasting: missing"))
		return
	}
	if err := validate.Lasting(*req.Lasting, s.opts.MaxLasting); err != nil {
		s.writeFailure(w, r, withStatus(http.StatusBadRequest, err)) // names lasting itself
		return
	}
	mode := messages.ModeEvents
	if req.Mode != nil {
		mode = messages.Mode(*req.Mode)
	}
	var engine messages.Engine
	if req.Engine != nil {
		if *req.Engine == "" {
			s.writeFailure(w, r, badRequest(`engine: must be "bpftrace" or "native", got an empty string`))
			return
		}
		engine = messages.Engine(*req.Engine)
	}
	t, err := s.opts.Templates.GetTemplate(r.Context(), *req.TraceID)
	if err == nil && t.Info.TraceType != typ {
		err = persistence.ErrNotFound // addressed by (type, id): a type mismatch is an unknown id
	}
	if err != nil {
		s.writeFailure(w, r, templateFailure("getting", typ, *req.TraceID, err))
		return
	}
	// The trace outlives the request: Start stops a trace when its context
	// ends. The wait for the answer is still bounded (the runtime's
	// timeout).
	reply, err := s.opts.Traces.Start(context.WithoutCancel(r.Context()), actors.StartRequest{
		Template: t, Lasting: time.Duration(*req.Lasting) * time.Second, Mode: mode, Engine: engine,
	})
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("starting trace of template %d: %w", t.ID, err))
		return
	}
	s.log.Info("trace started", "trace_path", reply.FilePath, "thread", reply.Thread, "template", t.ID,
		"lasting_seconds", *req.Lasting, "engine", engine)
	writeJSON(w, http.StatusOK, startResponse{Thread: reply.Thread, FilePath: reply.FilePath})
}

func (s *Server) runningTrace(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	path := r.URL.Query().Get("path")
	if path == "" {
		s.writeFailure(w, r, badRequest("path: missing query parameter"))
		return
	}
	info, ok, err := s.opts.Traces.Running(r.Context(), path)
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("getting running trace: %w", err))
		return
	}
	if !ok {
		s.writeFailure(w, r, withStatus(http.StatusNotFound, fmt.Errorf("no running trace %.300q", path)))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) allRunning(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	list, err := s.opts.Traces.All(r.Context())
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("listing running traces: %w", err))
		return
	}
	if list == nil {
		list = []messages.RunningInfo{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) killTrace(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req killRequest
	if err := readJSON(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		s.writeFailure(w, r, err)
		return
	}
	if req.KillPath == nil {
		s.writeFailure(w, r, badRequest("killPath: missing"))
		return
	}
	found, err := s.opts.Traces.Kill(r.Context(), *req.KillPath)
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("killing trace: %w", err))
		return
	}
	s.log.Info("kill requested", "trace_path", *req.KillPath, "running", found)
	// The body stays the seed's "Killed" whatever happened; the header
	// tells a caller that cares whether a trace was there.
	w.Header().Set(TraceFoundHeader, strconv.FormatBool(found))
	writeText(w, http.StatusOK, "Killed")
}
