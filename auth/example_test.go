package auth_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

func Example() {
	const uuid, secret = "4633d686-f75d-4d1f-8415-02ce37d9e5f8", "abc123456"

	// The sending side computes its header once and reuses it.
	out, err := auth.NewOutgoing(uuid, secret)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The receiving side shares one Verifier between all requests.
	v := auth.NewVerifier(uuid, secret, auth.Limits{})
	ctx := context.Background()
	fmt.Println("verified:", v.Verify(ctx, out.Value()) == nil)

	other := auth.NewVerifier(uuid, "another secret", auth.Limits{})
	err = other.Verify(ctx, out.Value())
	switch {
	case errors.Is(err, auth.ErrBusy):
		fmt.Println("503:", err)
	case errors.Is(err, auth.ErrUnauthorized):
		fmt.Println("401:", err)
	}
	// Output:
	// verified: true
	// 401: unauthorized: hash mismatch
}
