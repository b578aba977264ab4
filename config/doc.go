// Package config loads, checks and describes the configuration of
// lambda-endpoint: one TOML file with the sections [server], [database],
// [lambda] and [auth], plus environment variables that override it.
//
// The flow is Default → TOML file → environment → Validate, all done by
// [Load]:
//
//   - [Default] returns every setting with its safe default; keys absent
//     from the file keep it.
//   - The file is decoded strictly: a key the program does not know (a typo
//     such as "secrett") is an error naming it, and so is a value of the
//     wrong type.
//   - A file that itself holds a non-empty secret or root-password must not
//     be readable by group or others; Load refuses it with the chmod fix
//     ([PermissionError]).
//   - Environment variables override single keys: LAMBDA_<KEY> for the
//     [server] and [lambda] keys (LAMBDA_LISTEN, LAMBDA_LOG_LEVEL,
//     LAMBDA_SECRET, LAMBDA_SUBMIT_CHUNK_SIZE, ...), LAMBDA_DATABASE_URL and
//     LAMBDA_AUTH_<KEY> for [auth]; [EnvVars] lists them all.
//   - [Config.Validate] checks every value and names the offending key with
//     its section ("lambda.submit-chunk-size: must be at least 1, got 0").
//
// Every decoding and validation error wraps [ErrInvalid], so a caller can
// tell a bad configuration (exit and tell the operator) from an I/O error.
//
// The package only reads: it never creates the directories or files the
// configuration names, and it does not parse the database URL beyond its
// scheme (that belongs to the persistence layer). A [Config] returned by
// Load is owned by the caller; treat it as read-only once components have
// been built from it.
package config
