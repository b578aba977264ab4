package persistence

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// sampleRun is a fully populated run.
func sampleRun(path string, thread int64, startedAt time.Time) Run {
	code := 130
	finished := startedAt.Add(90 * time.Second)
	return Run{
		Path:       path,
		TemplateID: 7,
		Type:       messages.STAP,
		Info: messages.TemplateInfo{
			Process:     "/opt/ünï/bin/prog",
			Functions:   []string{"main", "ƒoo"},
			Environment: []string{"SYSTEMTAP_X"},
			Value:       []string{"ü 1"},
			Options:     []string{},
			TraceType:   messages.STAP,
		},
		Mode:        messages.ModeEvents,
		Thread:      thread,
		StartedAt:   startedAt,
		Lasting:     3600,
		State:       RunFinished,
		ExitCode:    &code,
		Reason:      messages.ReasonKilled,
		BytesRead:   1 << 33,
		ChunksSent:  12,
		ChunksAcked: 11,
		SHA256:      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		FinishedAt:  &finished,
	}
}

// stored is what a run reads back as: times in UTC at microseconds, nil
// lists empty, a BPF run with no engine bpftrace.
func stored(r Run) Run {
	if r.Type == messages.BPF && r.Engine == "" {
		r.Engine = messages.EngineBPFtrace
	}
	r.StartedAt = r.StartedAt.UTC().Truncate(time.Microsecond)
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC().Truncate(time.Microsecond)
		r.FinishedAt = &f
	}
	for _, l := range []*[]string{&r.Info.Functions, &r.Info.Environment, &r.Info.Value, &r.Info.Options} {
		if *l == nil {
			*l = []string{}
		}
	}
	return r
}

func TestRunsCRUD(t *testing.T) {
	// A start time with nanoseconds and a non-UTC zone, to see both
	// normalised.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	start := time.Date(2025, 6, 1, 12, 30, 45, 123456789, zone)

	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		full := sampleRun("/var/lib/lambda/traces/a.trace", 1, start)
		minimal := Run{Path: "/var/lib/lambda/traces/b.trace", TemplateID: 1, Type: messages.BPF, Thread: 2, StartedAt: start, Lasting: 1, State: RunRunning}

		for _, r := range []Run{full, minimal} {
			if err := s.CreateRun(ctx, r); err != nil {
				t.Fatalf("CreateRun(%s): %v", r.Path, err)
			}
			got, err := s.GetRun(ctx, r.Path)
			if err != nil {
				t.Fatalf("GetRun(%s): %v", r.Path, err)
			}
			mustEqual(t, "GetRun", got, stored(r))
			if got.StartedAt.Location() != time.UTC {
				t.Fatalf("StartedAt location = %v, want UTC", got.StartedAt.Location())
			}
		}

		if err := s.CreateRun(ctx, minimal); !errors.Is(err, ErrExists) {
			t.Fatalf("CreateRun with a taken path = %v, want ErrExists", err)
		}

		// Update every field but the key.
		code := 0
		done := start.Add(time.Hour)
		update := minimal
		update.TemplateID, update.Type, update.Info = 9, messages.STAP, full.Info
		update.Mode, update.Thread, update.StartedAt, update.Lasting = messages.ModeEvents, 99, start.Add(time.Minute), 60
		update.State, update.ExitCode, update.Reason = RunFinished, &code, messages.ReasonCompleted
		update.BytesRead, update.ChunksSent, update.ChunksAcked = 10, 2, 2
		update.SHA256, update.FinishedAt = "abc", &done
		if err := s.UpdateRun(ctx, update); err != nil {
			t.Fatalf("UpdateRun: %v", err)
		}
		got, err := s.GetRun(ctx, update.Path)
		if err != nil {
			t.Fatalf("GetRun: %v", err)
		}
		mustEqual(t, "GetRun after UpdateRun", got, stored(update))

		// And back to NULLs.
		update.ExitCode, update.FinishedAt = nil, nil
		if err := s.UpdateRun(ctx, update); err != nil {
			t.Fatalf("UpdateRun: %v", err)
		}
		if got, err := s.GetRun(ctx, update.Path); err != nil || got.ExitCode != nil || got.FinishedAt != nil {
			t.Fatalf("GetRun = %+v, %v; want ExitCode and FinishedAt cleared", got, err)
		}

		missing := sampleRun("/nope.trace", 3, start)
		if err := s.UpdateRun(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateRun(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetRun(ctx, missing.Path); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRun(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetRun(ctx, full.Path); err != nil {
			t.Fatalf("GetRun after unrelated calls: %v", err)
		}
		// A caller's path ending in a NUL (GET /traces/history?path=P%00):
		// SQLite found the run of P.
		if got, err := s.GetRun(ctx, full.Path+"\x00"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRun(path + NUL) = %s, %v; want ErrNotFound", got.Path, err)
		}
	})
}

func TestListRunsPagination(t *testing.T) {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var runs []Run
	for i := range 23 {
		// Groups of runs share a start time (and some a thread), with and
		// without fractional seconds, so every tie-break is exercised.
		at := base.Add(time.Duration(i/3) * time.Minute)
		if i%2 == 1 {
			at = at.Add(time.Duration(i) * 1500 * time.Microsecond)
		}
		r := sampleRun(fmt.Sprintf("/traces/%02d.trace", i), int64(i/2), at)
		r.State = []string{RunRunning, RunDelivering, RunFinished, RunInterrupted}[i%4]
		runs = append(runs, r)
	}
	want := make([]Run, 0, len(runs))
	for _, r := range runs {
		want = append(want, stored(r))
	}
	slices.SortFunc(want, func(a, b Run) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(b.Thread, a.Thread), cmp.Compare(b.Path, a.Path))
	})

	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		empty, err := s.ListRuns(ctx, RunQuery{})
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("ListRuns on an empty store = %#v, %v; want an empty non-nil slice", empty, err)
		}
		for _, r := range runs {
			if err := s.CreateRun(ctx, r); err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
		}

		all, err := s.ListRuns(ctx, RunQuery{})
		if err != nil {
			t.Fatalf("ListRuns: %v", err)
		}
		mustEqual(t, "ListRuns default page", all, want)

		for _, size := range []int{1, 5, 7, 23, 100} {
			t.Run(fmt.Sprintf("pages of %d", size), func(t *testing.T) {
				var got []Run
				q := RunQuery{Limit: size}
				for pages := 0; ; pages++ {
					if pages > len(runs)+1 {
						t.Fatal("pagination does not end")
					}
					page, err := s.ListRuns(ctx, q)
					if err != nil {
						t.Fatalf("ListRuns: %v", err)
					}
					if len(page) > size {
						t.Fatalf("page of %d runs, limit %d", len(page), size)
					}
					if len(page) == 0 {
						break
					}
					got = append(got, page...)
					// Through the opaque form, as an HTTP client would.
					c, err := ParseCursor(CursorOf(page[len(page)-1]).String())
					if err != nil {
						t.Fatalf("ParseCursor: %v", err)
					}
					q.Before = &c
				}
				mustEqual(t, "concatenated pages", got, want)
			})
		}

		t.Run("states", func(t *testing.T) {
			states := []string{RunRunning, RunDelivering}
			got, err := s.ListRuns(ctx, RunQuery{States: states})
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			var wantOpen []Run
			for _, r := range want {
				if slices.Contains(states, r.State) {
					wantOpen = append(wantOpen, r)
				}
			}
			mustEqual(t, "ListRuns by state", got, wantOpen)

			page, err := s.ListRuns(ctx, RunQuery{States: states, Limit: 2, Before: new(CursorOf(wantOpen[1]))})
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			mustEqual(t, "second page by state", page, wantOpen[2:4])
		})
	})
}

func TestListRunsLimits(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range DefaultRunLimit + 5 {
			if err := s.CreateRun(ctx, sampleRun(fmt.Sprintf("/t/%03d", i), int64(i), base.Add(time.Duration(i)*time.Second))); err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
		}
		for _, tt := range []struct{ limit, want int }{
			{0, DefaultRunLimit}, {-1, DefaultRunLimit}, {3, 3}, {MaxRunLimit + 1, DefaultRunLimit + 5},
		} {
			got, err := s.ListRuns(ctx, RunQuery{Limit: tt.limit})
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			if len(got) != tt.want {
				t.Errorf("ListRuns(Limit %d) gave %d runs, want %d", tt.limit, len(got), tt.want)
			}
		}
	})
}

func TestMaxThread(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		if n, err := s.MaxThread(ctx); err != nil || n != 0 {
			t.Fatalf("MaxThread on an empty store = %d, %v; want 0", n, err)
		}
		now := time.Now()
		for i, thread := range []int64{5, 1 << 40, 17} {
			if err := s.CreateRun(ctx, sampleRun(fmt.Sprintf("/t/%d", i), thread, now)); err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
		}
		if n, err := s.MaxThread(ctx); err != nil || n != 1<<40 {
			t.Fatalf("MaxThread = %d, %v; want %d", n, err, int64(1<<40))
		}
	})
}

// On SQLite times are text; bun trims trailing zeros of the fraction, so
// this checks that text order still is time order, with and without the
// cursor.
func TestListRunsOrdersFractionalSeconds(t *testing.T) {
	base := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	offsets := []time.Duration{
		0, 500 * time.Millisecond, 450 * time.Millisecond, 123456 * time.Microsecond,
		time.Microsecond, 100 * time.Millisecond, time.Second, 999999 * time.Microsecond,
	}
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		var want []time.Time
		for i, off := range offsets {
			if err := s.CreateRun(ctx, sampleRun(fmt.Sprintf("/f/%d", i), 1, base.Add(off))); err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
			want = append(want, base.Add(off))
		}
		slices.SortFunc(want, func(a, b time.Time) int { return b.Compare(a) })

		var got []time.Time
		q := RunQuery{Limit: 1}
		for range offsets {
			page, err := s.ListRuns(ctx, q)
			if err != nil || len(page) != 1 {
				t.Fatalf("ListRuns = %d runs, %v; want 1", len(page), err)
			}
			got = append(got, page[0].StartedAt)
			q.Before = new(CursorOf(page[0]))
		}
		mustEqual(t, "start times, newest first", got, want)
	})
}

// TestRunEngine: the engine of each run is recorded; a BPF run with none
// (rows of earlier versions) reads as bpftrace, a STAP run has none, and
// an engine on a STAP run or one the endpoint does not know is refused.
func TestRunEngine(t *testing.T) {
	start := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	bpf := func(path string, e messages.Engine) Run {
		r := sampleRun(path, 1, start)
		r.Type, r.Info.TraceType, r.Engine = messages.BPF, messages.BPF, e
		return r
	}
	stap := func(path string, e messages.Engine) Run {
		r := sampleRun(path, 1, start)
		r.Engine = e
		return r
	}
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		for _, c := range []struct {
			name  string
			run   Run
			want  messages.Engine
			valid bool
		}{
			{"native", bpf("/t/native.trace", messages.EngineNative), messages.EngineNative, true},
			{"bpftrace", bpf("/t/bpftrace.trace", messages.EngineBPFtrace), messages.EngineBPFtrace, true},
			{"BPF none recorded", bpf("/t/none.trace", ""), messages.EngineBPFtrace, true},
			{"STAP", stap("/t/stap.trace", ""), "", true},
			{"STAP with an engine", stap("/t/stap-native.trace", messages.EngineNative), "", false},
			{"unknown engine", bpf("/t/ebpf.trace", "ebpf"), "", false},
		} {
			err := s.CreateRun(ctx, c.run)
			if !c.valid {
				if err == nil {
					t.Errorf("%s: CreateRun accepted engine %q", c.name, c.run.Engine)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: CreateRun: %v", c.name, err)
			}
			got, err := s.GetRun(ctx, c.run.Path)
			if err != nil || got.Engine != c.want {
				t.Errorf("%s: GetRun engine %q, %v; want %q", c.name, got.Engine, err, c.want)
			}
		}
		// Switched engine by an update (a row is a whole record).
		r := bpf("/t/bpftrace.trace", messages.EngineNative)
		if err := s.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetRun(ctx, r.Path); err != nil || got.Engine != messages.EngineNative {
			t.Errorf("after UpdateRun engine %q, %v; want native", got.Engine, err)
		}
	})
}

// TestRunEngineOfEarlierRows: rows written before the engine migration
// (schema of the runs migration only) read after it as bpftrace (BPF) and
// none (STAP), in the listing too.
func TestRunEngineOfEarlierRows(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		ctx := testContext(t)
		s, guard, err := newStore(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		all, err := dialectMigrations(s.dialect)
		if err != nil {
			t.Fatal(err)
		}
		before := fstest.MapFS{}
		for _, name := range []string{"20250601000001_create_templates", "20250601000002_create_runs"} {
			for _, dir := range []string{".up.sql", ".down.sql"} {
				b, err := fs.ReadFile(all, name+".tx"+dir)
				if err != nil {
					t.Fatal(err)
				}
				before[name+".tx"+dir] = &fstest.MapFile{Data: b}
			}
		}
		if err := runMigrations(ctx, s.db, before, guard); err != nil {
			t.Fatalf("migrating to the schema before the engine: %v", err)
		}
		for _, row := range []struct{ path, typ string }{{"/t/old-bpf.trace", "BPF"}, {"/t/old-stap.trace", "STAP"}} {
			if _, err := s.db.ExecContext(ctx, `INSERT INTO runs (path, template_id, type, info, mode, thread, started_at, lasting,
				state, reason, bytes_read, chunks_sent, chunks_acked, sha256) VALUES (?, 1, ?, '{}', 'events', 1, ?, 60, 'finished', '', 0, 0, 0, '')`,
				row.path, row.typ, dbTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))); err != nil {
				t.Fatalf("inserting a row of the earlier schema: %v", err)
			}
		}
		if err := runMigrations(ctx, s.db, all, guard); err != nil {
			t.Fatalf("migrating: %v", err)
		}
		want := map[string]messages.Engine{"/t/old-bpf.trace": messages.EngineBPFtrace, "/t/old-stap.trace": ""}
		for path, e := range want {
			if got, err := s.GetRun(ctx, path); err != nil || got.Engine != e {
				t.Errorf("GetRun(%s) engine %q, %v; want %q", path, got.Engine, err, e)
			}
		}
		rs, err := s.ListRuns(ctx, RunQuery{})
		if err != nil || len(rs) != 2 {
			t.Fatalf("ListRuns = %d runs, %v", len(rs), err)
		}
		for _, r := range rs {
			if r.Engine != want[r.Path] {
				t.Errorf("ListRuns: %s engine %q, want %q", r.Path, r.Engine, want[r.Path])
			}
		}
	})
}
