package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestOutageLogOnceEachWay(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	o := &outageLog{
		log:     slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		backlog: func() int64 { return 4096 },
		now:     func() time.Time { return now },
	}
	o.recovered("chunk", "/t/a.trace", 2) // not down: nothing
	for i := 1; i <= 5; i++ {
		o.retry("chunk", "/t/a.trace", i, errors.New("connection refused"), time.Second)
		now = now.Add(time.Second)
	}
	o.retry("start", "/t/b.trace", 1, errors.New("503"), time.Second)
	o.recovered("chunk", "/t/a.trace", 6)
	o.recovered("start", "/t/b.trace", 2) // already up: nothing
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (outage begins, ends), got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"level=WARN", "platform unreachable", "connection refused", "backlog_bytes=4096"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("first line lacks %q: %s", want, lines[0])
		}
	}
	for _, want := range []string{"level=INFO", "platform answering again", "outage_seconds=5", "failed_attempts=6", "backlog_bytes=4096"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("second line lacks %q: %s", want, lines[1])
		}
	}
}
