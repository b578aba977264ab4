package spool

import (
	"testing"
	"time"
)

func TestParseSyncPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    SyncPolicy
		wantErr bool
	}{
		{"interval", SyncInterval, false},
		{"always", SyncAlways, false},
		{"never", SyncNever, false},
		{"", 0, true},
		{"Always", 0, true},
		{"sometimes", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSyncPolicy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil {
			continue
		}
		text, err := got.MarshalText()
		if err != nil || string(text) != tt.in || got.String() != tt.in {
			t.Errorf("%v: MarshalText = %q, %v; String = %q", got, text, err, got.String())
		}
		var p SyncPolicy
		if err := p.UnmarshalText([]byte(tt.in)); err != nil || p != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v", tt.in, p, err)
		}
	}
	if _, err := SyncPolicy(7).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown policy: no error")
	}
}

func TestOptionsNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		want    Options
		wantErr bool
	}{
		{"zero means defaults", Options{}, Options{SegmentBytes: DefaultSegmentBytes, SyncEvery: DefaultSyncEvery}, false},
		{"kept", Options{MaxBytes: 5, SegmentBytes: 1, Sync: SyncNever, SyncEvery: time.Minute},
			Options{MaxBytes: 5, SegmentBytes: 1, Sync: SyncNever, SyncEvery: time.Minute}, false},
		{"negative max", Options{MaxBytes: -1}, Options{}, true},
		{"segment too large", Options{SegmentBytes: MaxSegmentBytes + 1}, Options{}, true},
		{"negative segment", Options{SegmentBytes: -1}, Options{}, true},
		{"unknown policy", Options{Sync: 3}, Options{}, true},
		{"negative interval", Options{SyncEvery: -time.Second}, Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("normalize() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("normalize() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
