package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in TOML and in the environment as a
// Go duration string such as "500ms", "1s", "5m" or "24h".
type Duration struct {
	time.Duration
}

// UnmarshalText parses a duration string such as "1s" or "24h".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a number with a unit, such as \"1s\", \"5m\", \"24h\")", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in the form UnmarshalText reads.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}
