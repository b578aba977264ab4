package spool_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lambda-endpoint/lambda-endpoint/spool"
)

// Example shows an appender and a sender sharing a spool, and a restart.
func Example() {
	root, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "trace-1")

	sp, err := spool.Create(dir, []byte(`{"trace":"/tmp/x.trace"}`), spool.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The appender: tracer output, cut into chunks.
	for _, line := range []string{"a\n", "b\n", "c\n"} {
		sp.Append([]byte(line))
	}
	sp.Seal()

	// The sender: deliver chunk 0 only, then the endpoint stops.
	data, _ := sp.Read(0)
	fmt.Printf("submit %d %q\n", 0, data)
	sp.Ack(0)
	sp.Close()

	// After the restart: List finds the spool, Open recovers it, and the
	// sender resumes at the first unacknowledged chunk.
	dirs, _ := spool.List(root)
	sp2, rec, err := spool.Open(dirs[0], spool.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sp2.Remove()
	fmt.Printf("recovered %d chunks, %d acknowledged, meta %s\n", rec.Chunks, rec.Acked, sp2.Meta())
	ctx := context.Background()
	for no := sp2.Acked(); ; no++ {
		if err := sp2.Wait(ctx, no); err == io.EOF {
			break
		}
		data, _ := sp2.Read(no)
		fmt.Printf("submit %d %q\n", no, data)
		sp2.Ack(no)
	}
	sum := sp2.SHA256()
	fmt.Printf("finished: %d chunks, %d bytes, sha256 %s\n", sp2.Next(), sp2.Bytes(), hex.EncodeToString(sum[:4]))
	// Output:
	// submit 0 "a\n"
	// recovered 3 chunks, 1 acknowledged, meta {"trace":"/tmp/x.trace"}
	// submit 1 "b\n"
	// submit 2 "c\n"
	// finished: 3 chunks, 6 bytes, sha256 880553fc
}
