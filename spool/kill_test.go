package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Environment of the child process TestKilledProcess starts.
const (
	childDirEnv    = "SPOOL_TEST_CHILD_DIR"
	childChunksEnv = "SPOOL_TEST_CHILD_CHUNKS"
	childAcksEnv   = "SPOOL_TEST_CHILD_ACKS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild is the killed process: it appends and acknowledges chunks,
// says "ready" and waits to be killed. Nothing is fsynced: SyncInterval
// with an hour's period, and the spool is never closed.
func runChild(dir string) int {
	n, _ := strconv.Atoi(os.Getenv(childChunksEnv))
	acks, _ := strconv.Atoi(os.Getenv(childAcksEnv))
	s, err := Create(dir, []byte("child"), Options{SyncEvery: time.Hour, SegmentBytes: 4096})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range n {
		if _, err := s.Append(chunk(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if i < acks {
			if err := s.Ack(int64(i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return 0
}

// TestKilledProcess SIGKILLs a process that appended chunks without any
// fsync, and checks that every chunk and acknowledgement is found again,
// and that the spool was locked against this process while the child
// lived.
func TestKilledProcess(t *testing.T) {
	const n, acks = 2000, 1500
	dir := filepath.Join(t.TempDir(), "sp")
	// The deadline only keeps a broken child from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir,
		childChunksEnv+"="+strconv.Itoa(n), childAcksEnv+"="+strconv.Itoa(acks))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}

	if _, _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open while the child holds the spool = %v, want ErrLocked", err)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly, want killed")
	}

	s, r := reopen(t, dir, Options{})
	if len(r.Damage) != 0 || r.DroppedBytes != 0 {
		t.Errorf("Recovery = %+v", r)
	}
	if string(s.Meta()) != "child" {
		t.Errorf("Meta() = %q", s.Meta())
	}
	checkState(t, s, n, acks)
	checkChunks(t, s, acks, n)
}
