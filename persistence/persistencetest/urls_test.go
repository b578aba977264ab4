package persistencetest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

func TestPostgresURLIsFreshAndDropped(t *testing.T) {
	var names []string
	t.Run("create", func(t *testing.T) {
		for range 2 {
			u, err := url.Parse(PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, strings.TrimPrefix(u.Path, "/"))
		}
		if names[0] == names[1] || !strings.HasPrefix(names[0], "lambda_test_") {
			t.Fatalf("database names %v, want two distinct lambda_test_*", names)
		}
		for _, name := range names {
			if !databaseExists(t, name) {
				t.Fatalf("database %s does not exist during the test", name)
			}
		}
	})
	if len(names) == 0 {
		return // skipped: no server
	}
	for _, name := range names {
		if databaseExists(t, name) {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin, err := openAdmin(baseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatalf("looking for database %s: %v", name, err)
	}
	return n == 1
}

func TestURLs(t *testing.T) {
	urls := URLs(t)
	if !strings.HasPrefix(urls[SQLite], "sqlite:///") {
		t.Fatalf("URLs()[sqlite] = %q, want an absolute sqlite:// URL", urls[SQLite])
	}
	if pg, ok := urls[Postgres]; ok && !strings.Contains(pg, "/lambda_test_") {
		t.Fatalf("URLs()[postgres] = %q, want a lambda_test_ database", pg)
	}
	again := URLs(t)
	if again[SQLite] == urls[SQLite] || (again[Postgres] == urls[Postgres] && urls[Postgres] != "") {
		t.Fatal("URLs returned the same database twice")
	}
}

// recordingTB stands in for a test to see whether a helper skips or fails.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with r in its own goroutine, as the testing package would.
func (r *recordingTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
}

func TestUnreachablePostgres(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(EnvDatabaseURL, "postgres://postgres@"+addr+"/test?sslmode=disable")

	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			rec := &recordingTB{TB: t}
			rec.run(func(tb testing.TB) { PostgresURL(tb) })
			if ci == "true" && rec.failed == "" {
				t.Fatalf("PostgresURL with CI=true did not fail (skipped: %q)", rec.skipped)
			}
			if ci == "" && (rec.failed != "" || !strings.Contains(rec.skipped, "SKIPPING")) {
				t.Fatalf("PostgresURL without CI: failed %q, skipped %q; want a loud skip", rec.failed, rec.skipped)
			}

			rec = &recordingTB{TB: t}
			var urls map[string]string
			rec.run(func(tb testing.TB) { urls = URLs(tb) })
			if ci == "true" && rec.failed == "" {
				t.Fatal("URLs with CI=true did not fail")
			}
			if ci == "" {
				if _, ok := urls[Postgres]; ok || urls[SQLite] == "" || rec.failed != "" {
					t.Fatalf("URLs without CI = %v (failed %q), want SQLite only", urls, rec.failed)
				}
			}
		})
	}
}
