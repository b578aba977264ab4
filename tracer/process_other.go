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
