package main

import (
	"fmt"
	"io"
	"os"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/config"
)

const tokenHelp = `Prints an Authorization header value valid for this configuration: the
endpoint UUID followed by a fresh argon2i hash of the secret. Use it with curl:
  curl -H "Authorization: $(lambda-endpoint token --config FILE)" http://127.0.0.1:3000/heartbeat`

func tokenCommand(args []string, stdout, stderr io.Writer) error {
	path, err := parseFlags("token", tokenHelp, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return err
	}
	h, err := auth.Header(cfg.Lambda.EndpointUUID, cfg.Lambda.Secret)
	if err != nil {
		return fmt.Errorf("computing header: %w", err)
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}
