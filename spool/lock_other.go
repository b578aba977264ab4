//go:build !linux

package spool

import "os"

// lockFile does nothing outside Linux, where lambda-endpoint runs.
func lockFile(*os.File) error { return nil }
