package config

import (
	"reflect"
	"strings"
)

// envPrefix is the prefix of the environment variables of a section.
// [server] and [lambda] share LAMBDA_ (their keys are distinct; a test
// checks it), so the variables the contract names (LAMBDA_LISTEN,
// LAMBDA_SECRET, ...) come out of the same rule as the rest.
func envPrefix(section string) string {
	switch section {
	case "database":
		return "LAMBDA_DATABASE_"
	case "auth":
		return "LAMBDA_AUTH_"
	default:
		return "LAMBDA_"
	}
}

// field is one leaf key of Config, found by walking the toml tags.
type field struct {
	key   string // "lambda.submit-chunk-size"
	env   string // "LAMBDA_SUBMIT_CHUNK_SIZE"
	index []int  // path for reflect.Value.FieldByIndex from Config
	typ   reflect.Type
}

// fields lists every leaf key of Config in declaration order.
func fields() []field {
	var out []field
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		section := tomlName(sf)
		st := sf.Type
		for j := range st.NumField() {
			kf := st.Field(j)
			name := tomlName(kf)
			out = append(out, field{
				key:   section + "." + name,
				env:   envPrefix(section) + strings.ToUpper(strings.ReplaceAll(name, "-", "_")),
				index: []int{i, j},
				typ:   kf.Type,
			})
		}
	}
	return out
}

// tomlName is the key a struct field is decoded from.
func tomlName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
	if name == "" {
		return sf.Name
	}
	return name
}

// knownKeys lists every section.key of Config.
func knownKeys() []string {
	fs := fields()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.key
	}
	return out
}

// EnvVar is one environment variable that overrides one configuration key.
type EnvVar struct {
	// Name is the variable, such as "LAMBDA_SUBMIT_CHUNK_SIZE".
	Name string
	// Key is the TOML key it overrides, such as "lambda.submit-chunk-size".
	Key string
}

// EnvVars lists every environment variable Load reads, in the order of
// the keys in Config.
func EnvVars() []EnvVar {
	fs := fields()
	out := make([]EnvVar, len(fs))
	for i, f := range fs {
		out[i] = EnvVar{Name: f.env, Key: f.key}
	}
	return out
}
