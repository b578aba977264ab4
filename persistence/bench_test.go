package persistence

import (
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
)

func BenchmarkListTemplates(b *testing.B) {
	for _, dialect := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{persistencetest.SQLite, persistencetest.SQLiteURL},
		{persistencetest.Postgres, persistencetest.PostgresURL},
	} {
		b.Run(dialect.name, func(b *testing.B) {
			s := openStore(b, dialect.url(b))
			ctx := testContext(b)
			for range 100 {
				if _, err := s.CreateTemplate(ctx, bpfInfo("/usr/bin/python3", "PyObject_Malloc", "PyObject_Free", "_PyEval_EvalFrameDefault")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				list, err := s.ListTemplates(ctx)
				if err != nil || len(list) != 100 {
					b.Fatalf("ListTemplates = %d templates, %v", len(list), err)
				}
			}
		})
	}
}
