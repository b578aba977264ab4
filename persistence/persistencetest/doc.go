// Package persistencetest gives integration tests real, isolated databases
// for every dialect the persistence package supports, and a TCP proxy that
// can make a database disappear and come back.
//
// Each URL it returns names a database nobody else uses: a file in
// t.TempDir() for SQLite, a freshly created database lambda_test_<random>
// on the PostgreSQL server named by LAMBDA_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) that is dropped
// WITH (FORCE) when the test ends. Test packages running in parallel
// against one server therefore never see each other's data.
//
// When PostgreSQL cannot be reached, a test fails if the environment has
// CI=true and is otherwise skipped with a loud message (URLs leaves the
// "postgres" entry out instead, see its comment).
//
// The package imports the PostgreSQL driver but exports only strings and
// the Proxy, so its users need not know about bun.
package persistencetest
