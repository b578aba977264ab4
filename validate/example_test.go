package validate_test

import (
	"errors"
	"fmt"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func ExampleTemplate() {
	info := messages.TemplateInfo{
		Process:   "/bin/bash",
		Functions: []string{"xmalloc", `x} interval:s:1 { system("id")`},
		Options:   []string{"-c", "id"},
		TraceType: messages.BPF,
	}
	err := validate.Template(info, validate.DefaultRules())
	fmt.Println(errors.Is(err, validate.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// functions[1]: "x} interval:s:1 { system(\"id\")" has characters outside [A-Za-z0-9_.$@*?]
	// options[0]: "-c" is not allowed for BPF (runs a command); set allow-unsafe-options to permit it
}

func ExampleOptions() {
	fmt.Println(validate.Options(messages.STAP, []string{"-v", "-x", "4242", "-s", "64"}, false))
	fmt.Println(validate.Options(messages.BPF, []string{"-p", "12;id"}, false))
	// Output:
	// <nil>
	// options[1]: argument "12;id" of "-p" is not a PID (1..4194303)
}
