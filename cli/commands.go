package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/config"
)

// ErrUsage is returned for a wrong command line (after printing the
// usage); a caller exits 2.
var ErrUsage = errors.New("usage error")

// usageError is a wrong command line explained: it reads as its message
// alone (no "usage error" suffix) and matches ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// usagef is a usageError of the formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Env is what a command needs from the process.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment for config overrides (os.LookupEnv).
	Getenv func(string) (string, bool)
	// Terminal reports whether Stdout is a terminal (watch then redraws
	// its lines in place); nil means it is not.
	Terminal func() bool
	// Now is the clock (time left of a trace); nil means time.Now.
	Now func() time.Time
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// common are the flags of every API command.
type common struct {
	config   string
	endpoint string
	ca       string
	json     bool
	values   map[string]string   // every flag's value, after parsing
	lists    map[string][]string // the repeatable flags' values
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "path of the TOML configuration file (required): the endpoint-uuid and secret, and server.listen")
	fs.StringVar(&c.endpoint, "endpoint", "", "base URL of the endpoint, http:// or https:// (default: http://{server.listen} of the config,\nhttps:// with server.tls-cert and server.tls-key)")
	fs.StringVar(&c.ca, "ca", "", "PEM file of the CA certificates to trust for an https:// endpoint (e.g. its self-signed certificate),\nbesides the system's (default without --endpoint: the config's server.tls-cert)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answers instead of tables, for scripts")
}

// dialable is the listen address as a client on this host reaches it: a
// wildcard host ("", 0.0.0.0, ::) is localhost.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// client builds the API client from the config.
func (c *common) client(env Env) (*Client, error) {
	if c.config == "" {
		return nil, usagef("--config is required")
	}
	cfg, err := config.Load(c.config, env.Getenv)
	if err != nil {
		return nil, err
	}
	endpoint, source, ca, caFlag := c.endpoint, "--endpoint", c.ca, "--ca"
	if endpoint == "" {
		// The endpoint of this config, on this host: https with its
		// server.tls-cert trusted (self-signed or not), unless --ca says
		// otherwise.
		endpoint, source = "http://"+dialable(cfg.Server.Listen), "server.listen in "+c.config
		if env.Getenv != nil {
			if _, set := env.Getenv("LAMBDA_LISTEN"); set {
				source = "LAMBDA_LISTEN"
			}
		}
		if cfg.Server.TLS() {
			endpoint = "https://" + dialable(cfg.Server.Listen)
			if ca == "" {
				ca, caFlag = cfg.Server.TLSCert, "server.tls-cert"
			}
		}
	} else if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("--endpoint %q: must be an http:// or https:// URL, e.g. http://127.0.0.1:3000", endpoint)
	}
	if c.ca != "" && !strings.HasPrefix(endpoint, "https://") {
		return nil, usagef("--ca is for an https:// endpoint, not %s", endpoint)
	}
	httpClient, err := newHTTPClient(ca, caFlag)
	if err != nil {
		return nil, err
	}
	h, err := auth.Header(cfg.Lambda.EndpointUUID, cfg.Lambda.Secret)
	if err != nil {
		return nil, fmt.Errorf("computing authorization: %w", err)
	}
	return &Client{Endpoint: endpoint, Authorization: h, HTTP: httpClient, Source: source, CA: ca, CAFrom: caFlag}, nil
}

// command is one subcommand.
type command struct {
	name, args, help string
	flags            func(fs *flag.FlagSet) // the command's own flags
	run              func(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error
}

// dispatch runs group's subcommand named by args[0].
func dispatch(ctx context.Context, group, groupHelp string, cmds []command, args []string, env Env) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: lambda-endpoint %s COMMAND [flags]\n\n%s\n\nCommands:\n", group, groupHelp)
		for _, c := range cmds {
			fmt.Fprintf(w, "  %-9s %s\n", c.name, firstLine(c.help))
		}
		fmt.Fprintf(w, "\nRun \"lambda-endpoint %s COMMAND --help\" for a command's flags.\n", group)
	}
	if len(args) == 0 {
		usage(env.Stderr)
		return ErrUsage
	}
	if a := args[0]; a == "-h" || a == "--help" || a == "-help" || a == "help" {
		if a == "help" && len(args) > 1 {
			return dispatch(ctx, group, groupHelp, cmds, []string{args[1], "--help"}, env)
		}
		usage(env.Stdout)
		return flag.ErrHelp
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet(group+" "+c.name, flag.ContinueOnError)
		var co common
		co.register(fs)
		if c.flags != nil {
			c.flags(fs)
		}
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: lambda-endpoint %s %s --config FILE [flags] %s\n\n%s\n\nFlags:\n", group, c.name, c.args, c.help)
			fs.PrintDefaults()
		}
		// The flag package's own report (the error, then the whole usage)
		// is replaced by one line that says what to type instead.
		usageFn := fs.Usage
		fs.Usage = func() {}
		fs.SetOutput(io.Discard)
		pos, err := parseInterleaved(fs, args[1:])
		fs.Usage = usageFn
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(env.Stdout)
				fs.Usage()
				return err
			}
			fmt.Fprintf(env.Stderr, "lambda-endpoint %s %s: %s\nRun \"lambda-endpoint %s %s --help\" for its flags.\n",
				group, c.name, flagError(fs, err), group, c.name)
			return ErrUsage
		}
		fs.SetOutput(env.Stderr)
		co.values, co.lists = map[string]string{}, map[string][]string{}
		fs.VisitAll(func(f *flag.Flag) {
			co.values[f.Name] = f.Value.String()
			if l, ok := f.Value.(*listFlag); ok {
				co.lists[f.Name] = *l
			}
		})
		if co.config == "" {
			fmt.Fprintf(env.Stderr, "lambda-endpoint %s %s: --config is required\n", group, c.name)
			fs.Usage()
			return ErrUsage
		}
		cl, err := co.client(env)
		if err != nil {
			return err
		}
		// The positional arguments are handed over in a fresh FlagSet's Args.
		rest := flag.NewFlagSet("", flag.ContinueOnError)
		rest.Parse(append([]string{"--"}, pos...))
		return c.run(ctx, cl, &co, rest, env)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	if m := closest(args[0], names); m != "" {
		fmt.Fprintf(env.Stderr, "lambda-endpoint %s: unknown command %q: did you mean %s?\n\n", group, args[0], m)
	} else {
		fmt.Fprintf(env.Stderr, "lambda-endpoint %s: unknown command %q\n\n", group, args[0])
	}
	usage(env.Stderr)
	return ErrUsage
}

// parseInterleaved parses flags anywhere among the positional arguments
// ("kill PATH --json") and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// writeRaw prints an API answer as JSON (re-indented by nothing: one line).
func writeRaw(w io.Writer, raw []byte) error {
	raw = []byte(strings.TrimSpace(string(raw)))
	_, err := fmt.Fprintf(w, "%s\n", raw)
	return err
}

// parseLasting reads seconds ("60") or a duration ("10m", "1h30m").
func parseLasting(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d%time.Second != 0 {
		return 0, fmt.Errorf("--lasting %q: want whole seconds, e.g. 60 or 10m", s)
	}
	return int64(d / time.Second), nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// ---- templates ----

const templatesHelp = `Stores, lists and removes trace templates on the endpoint.`

var templateCommands = []command{
	{
		name: "add", args: "",
		help: `Stores a template and prints its id (PUT /trace).
Either give the fields as flags, or --file with a TemplateInfo JSON document
("-" reads standard input). Example:
  lambda-endpoint templates add --config var/lambda.toml --process /bin/bash --functions xmalloc,xfree`,
		flags: func(fs *flag.FlagSet) {
			fs.String("type", "BPF", "tracer: BPF (bpftrace) or STAP (SystemTap)")
			fs.String("process", "", "absolute path of the binary or library to probe")
			fs.String("functions", "", "comma-separated function names (wildcards * and ?)")
			fs.Var(&listFlag{}, "env", "NAME=VALUE environment variable for the tracer (repeatable)")
			fs.Var(&listFlag{}, "option", "extra tracer command-line argument (repeatable), e.g. --option=-v")
			fs.String("file", "", "read the template from this JSON file instead (\"-\": standard input)")
		},
	},
	{name: "ls", help: "Lists the stored templates (GET /traces)."},
	{name: "rm", args: "ID...", help: "Removes templates by id (POST /trace/remove).",
		flags: func(fs *flag.FlagSet) { fs.String("type", "BPF", "tracer type of the templates: BPF or STAP") }},
}

func init() {
	templateCommands[0].run = templatesAdd
	templateCommands[1].run = templatesLs
	templateCommands[2].run = templatesRm
}

// flagValue reads a flag registered by command.flags, by name.
func flagValue(co *common, name string) string { return co.values[name] }

// Templates runs "lambda-endpoint templates ARGS...".
func Templates(ctx context.Context, args []string, env Env) error {
	return dispatch(ctx, "templates", templatesHelp, templateCommands, args, env)
}

func templatesAdd(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	var t TemplateInfo
	if file := flagValue(co, "file"); file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return fmt.Errorf("reading --file: %w", err)
		}
		var raw json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("--file %s: not JSON: %w", file, err)
		}
		out, rawOut, err := c.putRaw(ctx, raw)
		if err != nil {
			return err
		}
		return printAdded(env, co, out, rawOut)
	}
	t.TraceType = strings.ToUpper(flagValue(co, "type"))
	t.Process = flagValue(co, "process")
	t.Functions = splitList(flagValue(co, "functions"))
	if t.Process == "" || len(t.Functions) == 0 {
		return usagef("--process and --functions are required (or --file)")
	}
	t.Environment, t.Value, t.Options = []string{}, []string{}, co.lists["option"]
	if t.Options == nil {
		t.Options = []string{}
	}
	for _, kv := range co.lists["env"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--env %q: want NAME=VALUE", kv)
		}
		t.Environment = append(t.Environment, k)
		t.Value = append(t.Value, v)
	}
	out, raw, err := c.AddTemplate(ctx, t)
	if err != nil {
		return err
	}
	return printAdded(env, co, out, raw)
}

func (c *Client) putRaw(ctx context.Context, body json.RawMessage) (Template, []byte, error) {
	var out Template
	raw, err := c.getJSON(ctx, "PUT", "/trace", body, &out)
	return out, raw, err
}

func printAdded(env Env, co *common, t Template, raw []byte) error {
	if co.json {
		return writeRaw(env.Stdout, raw)
	}
	_, err := fmt.Fprintf(env.Stdout, "template %d stored: %s %s: %s\n", t.TraceNo, t.Info.TraceType, t.Info.Process, strings.Join(t.Info.Functions, ", "))
	return err
}

func templatesLs(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	ts, raw, err := c.Templates(ctx)
	if err != nil {
		return err
	}
	if co.json {
		return writeRaw(env.Stdout, raw)
	}
	return writeTemplates(env.Stdout, ts)
}

func writeTemplates(w io.Writer, ts []Template) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tTYPE\tPROCESS\tFUNCTIONS\tENVIRONMENT\tOPTIONS")
	for _, t := range ts {
		var env []string
		for i, k := range t.Info.Environment {
			v := ""
			if i < len(t.Info.Value) {
				v = t.Info.Value[i]
			}
			env = append(env, k+"="+v)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.TraceNo, t.Info.TraceType, t.Info.Process,
			strings.Join(t.Info.Functions, ","), dash(strings.Join(env, " ")), dash(strings.Join(t.Info.Options, " ")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func templatesRm(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() == 0 {
		return usagef("give the ids of the templates to remove")
	}
	typ := strings.ToUpper(flagValue(co, "type"))
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			return usagef("template id %q: want a positive integer", a)
		}
		if err := c.RemoveTemplate(ctx, typ, id); err != nil {
			return typeHint(ctx, c, err, typ, id)
		}
		if co.json {
			fmt.Fprintf(env.Stdout, `{"removed":%d,"type":%q}`+"\n", id, typ)
		} else {
			fmt.Fprintf(env.Stdout, "template %d removed\n", id)
		}
	}
	return nil
}

// typeHint adds to a 404 about template (typ, id) ("no BPF template 5")
// which --type names it when the endpoint stores id under the other type.
func typeHint(ctx context.Context, c *Client, err error, typ string, id int64) error {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return err
	}
	ts, _, lerr := c.Templates(ctx)
	if lerr != nil {
		return err
	}
	for _, t := range ts {
		if t.TraceNo == id && !strings.EqualFold(t.Info.TraceType, typ) {
			return fmt.Errorf("%w (template %d is a %s template: use --type %s)", err, id, t.Info.TraceType, t.Info.TraceType)
		}
	}
	return err
}
