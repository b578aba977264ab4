package config_test

import (
	"fmt"

	"github.com/lambda-endpoint/lambda-endpoint/config"
)

// Redacted gives a copy of the configuration that is safe to log.
func ExampleConfig_Redacted() {
	c := config.Default()
	c.Lambda.Secret = "abc123456"
	c.Database.URL = "postgres://lambda:lambda@127.0.0.1:5432/lambda"
	r := c.Redacted()
	fmt.Println(r.Lambda.Secret, r.Lambda.RootPassword == "", r.Database.URL)
	// Output: *** true postgres://lambda:xxxxx@127.0.0.1:5432/lambda
}

// EnvVars lists the environment variables that override single keys.
func ExampleEnvVars() {
	for _, v := range config.EnvVars()[:3] {
		fmt.Println(v.Name, "->", v.Key)
	}
	// Output:
	// LAMBDA_LISTEN -> server.listen
	// LAMBDA_METRICS_LISTEN -> server.metrics-listen
	// LAMBDA_LOG_LEVEL -> server.log-level
}
