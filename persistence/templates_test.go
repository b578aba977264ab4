package persistence

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

func bpfInfo(process string, functions ...string) messages.TemplateInfo {
	return messages.TemplateInfo{
		Process:     process,
		Functions:   functions,
		Environment: []string{},
		Value:       []string{},
		Options:     []string{},
		TraceType:   messages.BPF,
	}
}

func TestTemplatesCRUD(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		infos := []messages.TemplateInfo{
			bpfInfo("/bin/bash", "xmalloc", "xfree"),
			{Process: "/usr/bin/python3", Functions: []string{"PyObject_*"}, Environment: []string{"SYSTEMTAP_DEBUG"}, Value: []string{"1"}, Options: []string{"-v"}, TraceType: messages.STAP},
			bpfInfo("/usr/sbin/nginx", "ngx_http_*"),
		}
		before := time.Now().Add(-time.Second)
		var created []messages.Template
		for _, info := range infos {
			tpl, err := s.CreateTemplate(ctx, info)
			if err != nil {
				t.Fatalf("CreateTemplate: %v", err)
			}
			if tpl.ID <= 0 {
				t.Fatalf("CreateTemplate gave id %d, want positive", tpl.ID)
			}
			if tpl.CreatedAt.Before(before) || tpl.CreatedAt.Location() != time.UTC {
				t.Fatalf("CreatedAt = %v, want a recent UTC time", tpl.CreatedAt)
			}
			mustEqual(t, "created info", tpl.Info, info)
			created = append(created, tpl)
		}

		list, err := s.ListTemplates(ctx)
		if err != nil {
			t.Fatalf("ListTemplates: %v", err)
		}
		mustEqual(t, "ListTemplates", list, created)
		for i := 1; i < len(list); i++ {
			if list[i-1].ID >= list[i].ID {
				t.Fatalf("ListTemplates not by ascending id: %d then %d", list[i-1].ID, list[i].ID)
			}
		}

		for _, want := range created {
			got, err := s.GetTemplate(ctx, want.ID)
			if err != nil {
				t.Fatalf("GetTemplate(%d): %v", want.ID, err)
			}
			mustEqual(t, "GetTemplate", got, want)
		}

		victim := created[1] // STAP
		if err := s.DeleteTemplate(ctx, messages.BPF, victim.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteTemplate with the wrong type = %v, want ErrNotFound", err)
		}
		if _, err := s.GetTemplate(ctx, victim.ID); err != nil {
			t.Fatalf("template gone after a refused delete: %v", err)
		}
		if err := s.DeleteTemplate(ctx, messages.STAP, victim.ID); err != nil {
			t.Fatalf("DeleteTemplate: %v", err)
		}
		if err := s.DeleteTemplate(ctx, messages.STAP, victim.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteTemplate = %v, want ErrNotFound", err)
		}
		if _, err := s.GetTemplate(ctx, victim.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetTemplate after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.GetTemplate(ctx, 1<<40); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetTemplate(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.DeleteTemplate(ctx, messages.BPF, 1<<40); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteTemplate(unknown) = %v, want ErrNotFound", err)
		}

		list, err = s.ListTemplates(ctx)
		if err != nil {
			t.Fatalf("ListTemplates: %v", err)
		}
		mustEqual(t, "ListTemplates after delete", list, []messages.Template{created[0], created[2]})

		// Ids are never reused, even the highest one after its delete.
		last := created[2]
		if err := s.DeleteTemplate(ctx, messages.BPF, last.ID); err != nil {
			t.Fatalf("DeleteTemplate: %v", err)
		}
		next, err := s.CreateTemplate(ctx, infos[0])
		if err != nil {
			t.Fatalf("CreateTemplate: %v", err)
		}
		if next.ID <= last.ID {
			t.Fatalf("new template got id %d, reusing the deleted %d", next.ID, last.ID)
		}
	})
}

func TestListTemplatesEmpty(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		list, err := s.ListTemplates(testContext(t))
		if err != nil {
			t.Fatalf("ListTemplates: %v", err)
		}
		if list == nil || len(list) != 0 {
			t.Fatalf("ListTemplates on an empty store = %#v, want an empty non-nil slice", list)
		}
	})
}

func TestTemplateRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		info messages.TemplateInfo
		want messages.TemplateInfo // zero: same as info
	}{
		{name: "seed example", info: bpfInfo("/bin/bash", "xmalloc", "xfree")},
		{
			name: "unicode and quoting",
			info: messages.TemplateInfo{
				Process:     "/opt/ünïcødé/日本語/bin'\"`$x",
				Functions:   []string{"ƒ_λ", "emoji_😀", `back\slash`, "quote'd", `"dq"`, "", "  spaced  "},
				Environment: []string{"BPFTRACE_STRLEN", "BPFTRACE_MAP_KEYS_MAX"},
				Value:       []string{"64", "tab\there, newline-free; 'quoted' \"too\" ∑"},
				Options:     []string{"-f", "json", "-B", "line"},
				TraceType:   messages.STAP,
			},
		},
		{
			name: "empty lists",
			info: messages.TemplateInfo{Process: "/bin/true", Functions: []string{}, Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.BPF},
		},
		{
			name: "nil lists read back empty",
			info: messages.TemplateInfo{Process: "/bin/true", TraceType: messages.BPF},
			want: messages.TemplateInfo{Process: "/bin/true", Functions: []string{}, Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.BPF},
		},
		{
			name: "long values",
			info: bpfInfo("/"+strings.Repeat("d/", 500)+"bin", strings.Repeat("f", 4096), "g"),
		},
	}
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := tt.want
				if want.Process == "" {
					want = tt.info
				}
				created, err := s.CreateTemplate(ctx, tt.info)
				if err != nil {
					t.Fatalf("CreateTemplate: %v", err)
				}
				mustEqual(t, "CreateTemplate info", created.Info, want)
				got, err := s.GetTemplate(ctx, created.ID)
				if err != nil {
					t.Fatalf("GetTemplate: %v", err)
				}
				mustEqual(t, "GetTemplate", got, created)
				for name, l := range map[string][]string{"functions": got.Info.Functions, "environment": got.Info.Environment, "value": got.Info.Value, "options": got.Info.Options} {
					if l == nil {
						t.Errorf("%s read back nil, want non-nil", name)
					}
				}
			})
		}
	})
}

func TestCreateTemplateRefusesUnknownType(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		for _, typ := range []messages.TraceType{"", "bpf", "XDP"} {
			info := bpfInfo("/bin/bash", "main")
			info.TraceType = typ
			_, err := s.CreateTemplate(ctx, info)
			if err == nil {
				t.Fatalf("CreateTemplate with type %q succeeded, want the schema's CHECK to refuse it", typ)
			}
			if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrExists) {
				t.Fatalf("CreateTemplate with type %q = %v, misclassified", typ, err)
			}
		}
		list, err := s.ListTemplates(ctx)
		if err != nil || len(list) != 0 {
			t.Fatalf("ListTemplates = %v, %v; want nothing stored", list, err)
		}
	})
}

func TestConcurrentCreateTemplate(t *testing.T) {
	const n = 20
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		var wg sync.WaitGroup
		ids := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				tpl, err := s.CreateTemplate(ctx, bpfInfo("/bin/bash", "f"))
				ids[i], errs[i] = tpl.ID, err
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("goroutine %d: CreateTemplate: %v", i, err)
			}
			if seen[ids[i]] {
				t.Fatalf("id %d issued twice", ids[i])
			}
			seen[ids[i]] = true
		}
		list, err := s.ListTemplates(ctx)
		if err != nil {
			t.Fatalf("ListTemplates: %v", err)
		}
		if len(list) != n {
			t.Fatalf("ListTemplates has %d templates, want %d", len(list), n)
		}
	})
}
