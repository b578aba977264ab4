package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

type heartbeatBody struct {
	Status string `json:"status"`
	Time   string `json:"time"`
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, heartbeatBody{Status: "alive", Time: s.opts.Now().UTC().Format(time.RFC3339)})
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	list, err := s.opts.Templates.ListTemplates(r.Context())
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("listing templates: %w", err))
		return
	}
	if list == nil {
		list = []messages.Template{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		s.writeFailure(w, r, err)
		return
	}
	info, err := decodeTemplate(body)
	if err != nil {
		s.writeFailure(w, r, err)
		return
	}
	if err := validate.Template(info, s.opts.Rules); err != nil {
		s.writeFailure(w, r, withStatus(http.StatusBadRequest, err))
		return
	}
	// Preflight against the binary: it is readable ELF, every function
	// matches a symbol, the probes stay under lambda.max-probes.
	if _, err := s.opts.Binaries.Check(info); err != nil {
		s.writeFailure(w, r, withStatus(http.StatusBadRequest, err))
		return
	}
	t, err := s.opts.Templates.CreateTemplate(r.Context(), info)
	if err != nil {
		s.writeFailure(w, r, fmt.Errorf("storing template: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) removeTemplate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req removeRequest
	if err := readJSON(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		s.writeFailure(w, r, err)
		return
	}
	typ, err := req.RemoveType.parse("removeType")
	if err != nil {
		s.writeFailure(w, r, err)
		return
	}
	if req.RemoveID == nil {
		s.writeFailure(w, r, badRequest("removeId: missing"))
		return
	}
	err = s.opts.Templates.DeleteTemplate(r.Context(), typ, *req.RemoveID)
	if err != nil {
		s.writeFailure(w, r, templateFailure("removing", typ, *req.RemoveID, err))
		return
	}
	writeText(w, http.StatusOK, "deleted")
}

// templateFailure words a store error about template (typ, id): an unknown
// one is "no BPF template 7" alone (the store's own "not found" would repeat
// it); other errors get the gerund context.
func templateFailure(doing string, typ messages.TraceType, id int64, err error) error {
	if errors.Is(err, persistence.ErrNotFound) {
		return withStatus(http.StatusNotFound, fmt.Errorf("no %s template %d", typ, id))
	}
	return fmt.Errorf("%s %s template %d: %w", doing, typ, id, err)
}
