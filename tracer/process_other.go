//go:build !linux

package tracer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// cgroup exists only on Linux.
type cgroup struct{ dir string }

// stdoutPipe exists only on Linux.
type stdoutPipe struct{ capacity int }

func (s *stdoutPipe) Read([]byte) (int, error)        { return 0, errors.ErrUnsupported }
func (s *stdoutPipe) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }
func (s *stdoutPipe) close() error                    { return nil }

// Start fails: tracer processes need Linux.
func Start(ctx context.Context, c Command) (*Process, error) {
	return nil, fmt.Errorf("starting tracer %s: %w", c.Path, errors.ErrUnsupported)
}

// Stop does nothing: no Process exists outside Linux.
func (p *Process) Stop(grace time.Duration) {}

// Kill does nothing: no Process exists outside Linux.
func (p *Process) Kill() {}

// Cleanup does nothing outside Linux.
func Cleanup(parent string) error { return nil }

// RemoveCgroupParent does nothing: cgroups are Linux only.
func RemoveCgroupParent(parent string) error { return nil }
