package validate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// checkRefusal asserts that err refuses field (wantField "" means err must
// be nil) and, when wantReason is set, that the reason contains it.
func checkRefusal(t *testing.T, err error, wantField, wantReason string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got nil, want a refusal of %s", wantField)
	}
	if !errors.Is(err, validate.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) is false", err)
	}
	var fe *validate.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != wantField {
		t.Errorf("field = %q, want %q (error %v)", fe.Field, wantField, err)
	}
	if !strings.HasPrefix(err.Error(), wantField+": ") {
		t.Errorf("error %q does not start with %q", err.Error(), wantField+": ")
	}
	if wantReason != "" && !strings.Contains(fe.Reason, wantReason) {
		t.Errorf("reason %q does not contain %q", fe.Reason, wantReason)
	}
}
