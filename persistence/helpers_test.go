package persistence

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
)

// testTimeout bounds every test's database calls.
const testTimeout = 60 * time.Second

// forEachStore runs fn against a fresh Store on every dialect (subtests
// "sqlite" and "postgres"), the way bun's own suite runs testEachDB.
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	persistencetest.ForEach(t, func(t *testing.T, url string) {
		fn(t, openStore(t, url))
	})
}

// forEachURL runs fn with a fresh database URL per dialect.
func forEachURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	persistencetest.ForEach(t, fn)
}

// openStore opens url and closes the Store when t ends.
func openStore(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(testContext(t), url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testContext is cancelled when t ends or after testTimeout.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// mustEqual fails t when got and want differ.
func mustEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}
