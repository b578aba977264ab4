package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// applyEnv overrides the keys of cfg whose environment variable getenv
// reports as set. A variable set to the empty string empties a string or a
// list; for a number, bool or duration it is an error.
func applyEnv(cfg *Config, getenv func(string) (string, bool)) error {
	root := reflect.ValueOf(cfg).Elem()
	for _, f := range fields() {
		raw, ok := getenv(f.env)
		if !ok {
			continue
		}
		if err := setFromString(root.FieldByIndex(f.index), raw); err != nil {
			return &KeyError{Key: f.env, Reason: fmt.Sprintf("%s (overrides %s)", err, f.key)}
		}
	}
	return nil
}

// setFromString parses raw into v according to v's type.
func setFromString(v reflect.Value, raw string) error {
	if v.Type() == reflect.TypeFor[Duration]() {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid duration %q (want a number with a unit, such as \"1s\", \"5m\", \"24h\")", raw)
		}
		v.Set(reflect.ValueOf(Duration{d}))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q (%s)", raw, numErrReason(err))
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid unsigned integer %q (%s)", raw, numErrReason(err))
		}
		v.SetUint(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type()) // no such field today
		}
		list := []string{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported type %s", v.Type()) // no such field today
	}
	return nil
}

// numErrReason turns a strconv error into a short reason.
func numErrReason(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "out of range"
	}
	return "not a whole number"
}

// UnknownEnv returns one warning per variable of environ (os.Environ's
// "NAME=value" form) that starts with LAMBDA_ but overrides no key, naming
// the closest known variable when one is within two edits:
//
//	LAMBDA_SUBMIT_CHUNK_SISE is not a lambda-endpoint variable: ignored (did you mean LAMBDA_SUBMIT_CHUNK_SIZE?)
//
// Variables starting with LAMBDA_TEST_ (the test suite's own) are left
// alone. Values are never repeated: they may hold secrets.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for _, v := range EnvVars() {
		known[v.Name] = true
		names = append(names, v.Name)
	}
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LAMBDA_") || strings.HasPrefix(name, "LAMBDA_TEST_") || known[name] {
			continue
		}
		w := fmt.Sprintf("%s is not a lambda-endpoint variable: ignored", clipName(name))
		if hint := closestKey(name, names); hint != "" {
			w += fmt.Sprintf(" (did you mean %s?)", hint)
		}
		warnings = append(warnings, w)
	}
	return warnings
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
