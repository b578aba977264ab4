package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecurityEnvironmentAttacks replays the environment attacks of the
// security report against the real endpoint with the default allow-list:
// each is refused at PUT with 400 naming the field, nothing is stored, and
// the SystemTap Makefile attack runs nothing. A variable of the default
// table within its bounds is accepted and runs under the real bpftrace.
func TestSecurityEnvironmentAttacks(t *testing.T) {
	bt := requireBpftrace(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt,
		StapPath: "/usr/bin/stap", Extra: "bpf-env-allow = []\nstap-env-allow = []"})

	// A fake "kernel build tree": stap runs make in SYSTEMTAP_RELEASE.
	evil := t.TempDir()
	marker := filepath.Join(evil, "pwned")
	makefile := fmt.Sprintf("all:\n\ttouch %s\nmodules:\n\ttouch %s\n", marker, marker)
	if err := os.WriteFile(filepath.Join(evil, "Makefile"), []byte(makefile), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := func(typ, name, value string) string {
		return fmt.Sprintf(`{"process":"/bin/bash","functions":["xmalloc"],"environment":[%q],"value":[%q],"traceType":%q}`, name, value, typ)
	}
	attacks := []struct {
		name, typ, env, value, field, reason string
	}{
		{"SYSTEMTAP_RELEASE", "STAP", "SYSTEMTAP_RELEASE", evil, "environment[0]", "is not allowed for STAP"},
		{"SYSTEMTAP_STAPRUN", "STAP", "SYSTEMTAP_STAPRUN", filepath.Join(evil, "staprun"), "environment[0]", "is not allowed for STAP"},
		{"SYSTEMTAP_RUNTIME", "STAP", "SYSTEMTAP_RUNTIME", evil, "environment[0]", "is not allowed for STAP"},
		{"SYSTEMTAP_TAPSET", "STAP", "SYSTEMTAP_TAPSET", evil, "environment[0]", "is not allowed for STAP"},
		{"SYSTEMTAP_DIR", "STAP", "SYSTEMTAP_DIR", evil, "environment[0]", "is not allowed for STAP"},
		{"BPFTRACE_LOG_SIZE", "BPF", "BPFTRACE_LOG_SIZE", "4000000000", "environment[0]", "is not allowed for BPF"},
		{"BPFTRACE_BTF", "BPF", "BPFTRACE_BTF", "/etc/shadow", "environment[0]", "is not allowed for BPF"},
		{"BPFTRACE_MAX_PROBES", "BPF", "BPFTRACE_MAX_PROBES", "5000", "environment[0]", "is not allowed for BPF"},
		{"BPFTRACE_PERF_RB_PAGES too big", "BPF", "BPFTRACE_PERF_RB_PAGES", "131072", "value[0]", "want a power of two from 1 to 256"},
		{"BPFTRACE_STRLEN with a sign", "BPF", "BPFTRACE_STRLEN", "+64", "value[0]", "want a decimal integer from 1 to 200"},
		{"LD_PRELOAD", "BPF", "LD_PRELOAD", filepath.Join(evil, "x.so"), "environment[0]", "is not allowed for BPF"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			st, body, _ := e.do("PUT", "/trace", tmpl(a.typ, a.env, a.value), nil)
			var res struct {
				Error string `json:"error"`
			}
			if st != http.StatusBadRequest || json.Unmarshal(body, &res) != nil ||
				!strings.Contains(res.Error, a.field) || !strings.Contains(res.Error, a.reason) {
				t.Fatalf("PUT: %d %s, want 400 naming %s: ...%s", st, body, a.field, a.reason)
			}
		})
	}
	var all []json.RawMessage
	e.mustJSON("GET", "/traces", "", http.StatusOK, &all)
	if len(all) != 0 {
		t.Errorf("refused templates were stored: %s", all)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the attacker's Makefile ran: %s exists (%v)", marker, err)
	}

	// Allowed variables in range: stored and run by the real bpftrace.
	id := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF",` +
		`"environment":["BPFTRACE_STRLEN","BPFTRACE_PERF_RB_PAGES","BPFTRACE_NO_CPP_DEMANGLE"],"value":["100","128","1"]}`)
	s := e.start("BPF", id, 1)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if rec.Finished.Reason != "completed" || rec.Finished.Code != 0 {
		t.Errorf("trace with allowed variables finished %+v", rec.Finished)
	}
}
