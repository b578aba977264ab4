package config

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrInvalid is wrapped by every error that reports a bad configuration:
// undecodable TOML, an unknown key, a wrong type, a malformed environment
// variable, a value Validate refuses, and a file with secrets that is open
// to group or others. I/O errors (a missing file) do not wrap it.
var ErrInvalid = errors.New("invalid configuration")

// KeyError is a bad value of one key. Key is the TOML key with its section
// ("lambda.secret") or, for a malformed environment variable, the
// variable's name ("LAMBDA_SUBMIT_CHUNK_SIZE"). It matches ErrInvalid.
type KeyError struct {
	Key    string
	Reason string
}

// Error returns "<key>: <reason>".
func (e *KeyError) Error() string {
	return e.Key + ": " + e.Reason
}

// Is reports whether target is ErrInvalid.
func (e *KeyError) Is(target error) bool {
	return target == ErrInvalid
}

// PermissionError refuses a configuration file that holds a secret or a
// root password while group or others may read it. It matches ErrInvalid.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

// Error names the file, its mode and the fix.
func (e *PermissionError) Error() string {
	return fmt.Sprintf("config %s holds secrets but is readable by group/others (mode %04o): run chmod 600 %s",
		e.Path, e.Mode.Perm(), e.Path)
}

// Is reports whether target is ErrInvalid.
func (e *PermissionError) Is(target error) bool {
	return target == ErrInvalid
}

// decodeError is a TOML file the decoder refused (syntax, wrong type); the
// decoder's message names the line and key.
type decodeError struct {
	err error
}

func (e *decodeError) Error() string        { return e.err.Error() }
func (e *decodeError) Unwrap() error        { return e.err }
func (e *decodeError) Is(target error) bool { return target == ErrInvalid }
