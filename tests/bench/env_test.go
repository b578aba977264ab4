//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

const (
	benchUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	benchSecret = "abc123456"
)

// benchEnv is what every section shares: the binaries built once and a
// valid Authorization value.
type benchEnv struct {
	Dir         string // scratch directory of the whole run
	EndpointBin string // the endpoint, built without the race detector
	FakeBin     string // tracer/internal/faketracer
	Header      string // a valid Authorization value for benchUUID/benchSecret
	buildErr    error
}

// newBenchEnv builds the endpoint and the fake tracer into a scratch
// directory removed when t ends. A build failure is kept in buildErr so that
// each section fails with it.
func newBenchEnv(t *testing.T) *benchEnv {
	dir, err := os.MkdirTemp("", "lambda-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &benchEnv{
		Dir:         dir,
		EndpointBin: filepath.Join(dir, "lambda-endpoint"),
		FakeBin:     filepath.Join(dir, "faketracer"),
	}
	e.buildErr = goBuild(e.EndpointBin, "../../cmd/lambda-endpoint")
	if e.buildErr == nil {
		e.buildErr = goBuild(e.FakeBin, "../../tracer/internal/faketracer")
	}
	if e.buildErr == nil {
		e.Header, e.buildErr = auth.Header(benchUUID, benchSecret)
	}
	return e
}

// goBuild builds pkg into out, without the race detector.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// inCI reports whether a missing component must fail instead of skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing marks s skipped for reason, and fails t under CI=true.
func missing(t *testing.T, s *section, reason string) {
	s.Skipped = reason
	if inCI() {
		t.Errorf("%s (CI=true: a missing component is a failure)", reason)
	}
}
