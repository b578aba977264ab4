package persistence

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSQLitePath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url, want, wantErr string
	}{
		{url: "sqlite:///var/lib/lambda/lambda.db", want: "/var/lib/lambda/lambda.db"},
		{url: "sqlite://lambda-endpoint.db", want: filepath.Join(wd, "lambda-endpoint.db")},
		{url: "sqlite://data/sub/x.db", want: filepath.Join(wd, "data/sub/x.db")},
		{url: "sqlite://:memory:", want: ":memory:"},
		{url: "sqlite://", wantErr: "needs a path"},
		{url: "sqlite://x.db?mode=ro", wantErr: "no query"},
		{url: "sqlite://dir/", wantErr: "directory"},
	}
	for _, tt := range tests {
		got, err := sqlitePath(tt.url)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("sqlitePath(%q) = %q, %v; want an error containing %q", tt.url, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("sqlitePath(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, url := range []string{
		"",
		"mysql://root:pw@localhost/db",
		"lambda.db",
		"postgres://%zz",
		"postgres://u:pw@host:badport/db",
		"u:pw@host/db",
		"postgres://:pw@127.0.0.1/db?sslmode=bogus",
		"sqlite://",
	} {
		s, err := Open(testContext(t), url)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("Open(%q) error %q shows the password", url, err)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		s := openStore(t, "sqlite://:memory:")
		if s.Dialect() != DialectSQLite {
			t.Fatalf("Dialect() = %q", s.Dialect())
		}
		ctx := testContext(t)
		tpl, err := s.CreateTemplate(ctx, bpfInfo("/bin/bash", "main"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTemplate(ctx, tpl.ID); err != nil {
			t.Fatalf("in-memory database lost its data: %v", err)
		}
		// Each :memory: Store is its own database.
		other := openStore(t, "sqlite://:memory:")
		if list, err := other.ListTemplates(ctx); err != nil || len(list) != 0 {
			t.Fatalf("second :memory: store sees %v, %v", list, err)
		}
	})
	t.Run("relative path and missing parents", func(t *testing.T) {
		t.Chdir(t.TempDir())
		s := openStore(t, "sqlite://state/nested/lambda.db")
		if _, err := s.CreateTemplate(testContext(t), bpfInfo("/bin/bash", "main")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join("state", "nested", "lambda.db")); err != nil {
			t.Fatalf("database file not where the URL says: %v", err)
		}
	})
	t.Run("pragmas", func(t *testing.T) {
		s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
		ctx := testContext(t)
		for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000"} {
			var got string
			if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
			}
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(testContext(t), "sqlite://"+file+"/x.db"); err == nil {
			_ = s.Close()
			t.Fatal("Open under a regular file succeeded")
		}
	})
}

func TestDialect(t *testing.T) {
	want := map[string]string{"sqlite": DialectSQLite, "postgres": DialectPostgres}
	forEachStore(t, func(t *testing.T, s *Store) {
		if got := s.Dialect(); got != want[t.Name()[strings.LastIndex(t.Name(), "/")+1:]] {
			t.Fatalf("Dialect() = %q in %s", got, t.Name())
		}
	})
}
