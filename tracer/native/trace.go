package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Sentinel errors Start may wrap.
var (
	// ErrNotSupported: this machine or binary cannot be traced natively
	// (an architecture other than amd64, a Go toolchain before 1.17 in a
	// mode that needs returns).
	ErrNotSupported = errors.New("not supported by the native engine")
	// ErrNoSymbol: a function (or wildcard) has no function symbol in the
	// binary, e.g. because the compiler inlined it everywhere.
	ErrNoSymbol = errors.New("no function symbol")
	// ErrNoReturn: a Go function has no RET instruction to probe.
	ErrNoReturn = errors.New("no return to probe")
)

// Defaults and bounds of a Spec.
const (
	// DefaultRingBytes is the ring buffer's size when Spec.RingBytes is 0.
	DefaultRingBytes = 4 << 20
	// MinRingBytes and MaxRingBytes bound Spec.RingBytes.
	MinRingBytes = 4 << 10
	MaxRingBytes = 256 << 20
	// DefaultPollInterval is how often the ring buffer is read when
	// Spec.PollInterval is 0.
	DefaultPollInterval = 10 * time.Millisecond
	// MaxPollInterval bounds Spec.PollInterval.
	MaxPollInterval = time.Second
	// DefaultMaxProbes bounds the uprobes of one trace when Spec.MaxProbes
	// is 0: entries and returns (a Go function has one per RET).
	DefaultMaxProbes = 4096
	// startsEntries is how many calls may be pending (entered, not yet
	// returned) at once in modes calls and summary.
	startsEntries = 16384
)

// Spec describes one native trace.
type Spec struct {
	// Process is the absolute path of the binary whose functions are
	// probed (an executable or a shared library).
	Process string
	// Functions are the function names to probe; "*" is a wildcard
	// matching any run of characters. A function named twice (or by a name
	// and a wildcard) is probed once.
	Functions []string
	// Mode is "" or messages.ModeEvents, messages.ModeCalls or
	// messages.ModeSummary, with the output of tracer.Script's modes.
	Mode messages.Mode
	// Lasting ends the trace on its own after that long (as the bpftrace
	// script's interval probe); 0 runs until Stop or the context ends.
	Lasting time.Duration
	// PID, when not 0, records only that process (all its threads): the
	// filter runs in the kernel, before anything is recorded.
	PID int
	// RingBytes is the ring buffer's size in bytes: rounded up to a power
	// of two, MinRingBytes..MaxRingBytes; 0 means DefaultRingBytes.
	RingBytes int
	// PollInterval is how often the ring buffer is read (records are
	// written without waking the reader, which costs the traced program
	// far less; a ring more than half full wakes it at once); 0 means
	// DefaultPollInterval, at most MaxPollInterval. Set FlushInterval
	// instead to only bound it.
	PollInterval time.Duration
	// FlushInterval, when not 0, bounds PollInterval to a tenth of it, so
	// a quiet trace's lines are never held back near a flush interval.
	FlushInterval time.Duration
	// MaxProbes bounds the number of uprobes; 0 means DefaultMaxProbes.
	MaxProbes int
}

// Result is how a trace ended.
type Result struct {
	// Records is the number of records read from the ring buffer (one per
	// line in modes events and calls).
	Records uint64
	// LostEvents is the number of events the kernel could not keep: mode
	// events, entry and return records that found the ring buffer full;
	// mode calls, call records that found it full and calls whose entry
	// could not be stored (more than startsEntries calls pending); mode
	// summary, those calls. Exact: counted in the kernel.
	LostEvents uint64
	// Bytes is what was written to Output.
	Bytes uint64
	// Expired reports that Lasting ended the trace (rather than Stop or
	// the context).
	Expired bool
	// Probes is the number of uprobes that were attached.
	Probes int
}

// Trace is one running native trace. Its methods are safe for concurrent
// use.
type Trace struct {
	spec    Spec
	info    *binaryInfo
	poll    time.Duration
	names   []string
	objs    []io.Closer // maps, programs, links: closed at the end
	links   []link.Link
	maps    progMaps
	events  *ebpf.Map
	lost    *ebpf.Map
	hist    *ebpf.Map
	rd      *ringbuf.Reader
	out     *output // the formatted output: written by run, read by the caller
	stop    chan struct{}
	stopOne sync.Once
	done    chan struct{}
	expired atomic.Bool

	res Result // written before done is closed
	err error
}

// noTaskFrames, when set (by this package's tests), keeps every C call's
// entry in the hash map, as Go calls are.
var noTaskFrames bool

// runHook, when set (by this package's tests), is called by each trace's
// goroutine before it reads the ring buffer.
var runHook func()

// normalize fills in s's defaults and checks it.
func (s *Spec) normalize() error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("%w: the native engine runs on amd64 only, not %s", ErrNotSupported, runtime.GOARCH)
	}
	switch s.Mode {
	case "", messages.ModeEvents, messages.ModeCalls, messages.ModeSummary:
	default:
		return fmt.Errorf("mode %s is not events, calls or summary", strconv.Quote(string(s.Mode)))
	}
	if s.Process == "" || s.Process[0] != '/' {
		return fmt.Errorf("process %s is not an absolute path", strconv.Quote(s.Process))
	}
	if len(s.Functions) == 0 {
		return errors.New("no functions to probe")
	}
	if s.PID < 0 || s.PID > 1<<22 {
		return fmt.Errorf("pid %d out of range", s.PID)
	}
	if s.Lasting < 0 {
		return fmt.Errorf("lasting %s is negative", s.Lasting)
	}
	switch {
	case s.RingBytes == 0:
		s.RingBytes = DefaultRingBytes
	case s.RingBytes < MinRingBytes || s.RingBytes > MaxRingBytes:
		return fmt.Errorf("ring buffer size %d out of range %d..%d", s.RingBytes, MinRingBytes, MaxRingBytes)
	}
	for n := MinRingBytes; ; n <<= 1 {
		if n >= s.RingBytes {
			s.RingBytes = n
			break
		}
	}
	if s.PollInterval <= 0 {
		s.PollInterval = DefaultPollInterval
	}
	s.PollInterval = min(s.PollInterval, MaxPollInterval)
	if s.FlushInterval > 0 {
		s.PollInterval = max(min(s.PollInterval, s.FlushInterval/10), time.Millisecond)
	}
	if s.MaxProbes <= 0 {
		s.MaxProbes = DefaultMaxProbes
	}
	return nil
}

// Start opens the binary of s (binary.Open), plans the trace (Prepare)
// and starts it (Plan.Start). A caller that must answer a bad request
// before it starts anything, or attach to exactly the file its preflight
// read, calls Prepare and Plan.Start itself.
func Start(ctx context.Context, s Spec) (*Trace, error) {
	f, err := binary.Open(s.Process)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.Process, err)
	}
	syms, err := binary.ReadFile(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reading %s: %w", s.Process, err)
	}
	p, err := Prepare(ctx, f, syms, s)
	if err != nil {
		return nil, err
	}
	return p.Start(ctx)
}

// Start loads and attaches the probes of the plan and starts reading
// them. The trace runs until Stop, ctx's end or the Spec's Lasting, then
// detaches every probe, reads what the ring buffer still holds, prints
// the summary in mode summary, and closes Output's write end (EOF).
//
// The probes go into the file the plan opened, through its descriptor
// (binary.File.ProcPath), at the file offsets the plan worked out: what
// the path names by now does not matter. Start closes the plan's file
// whatever happens; nothing is left attached when it fails.
//
// A panic while starting (building a program) is returned as an error,
// with everything released: it never reaches the caller's goroutine.
func (p *Plan) Start(ctx context.Context) (_ *Trace, err error) {
	var t *Trace
	s := p.spec
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting native trace of %s: panic: %v", s.Process, r)
		}
		if err != nil && t != nil {
			t.release()
			if t.out != nil {
				_ = t.out.Close()
			}
		}
		_ = p.file.Close()
	}()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting native trace of %s: %w", s.Process, err)
	}
	info := p.info
	t = &Trace{spec: s, info: info, poll: s.PollInterval, stop: make(chan struct{}), done: make(chan struct{})}
	for _, f := range info.Functions {
		t.names = append(t.names, f.Name)
	}
	if err := t.load(); err != nil {
		return nil, fmt.Errorf("loading probes of %s: %w", s.Process, err)
	}
	if t.rd, err = ringbuf.NewReader(t.events); err != nil {
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	t.out = newOutput()
	if err := t.attach(p.file.ProcPath()); err != nil {
		return nil, fmt.Errorf("attaching probes to %s: %w", s.Process, err)
	}
	t.res.Probes = len(t.links)
	go t.run(ctx)
	return t, nil
}

// load creates the maps and programs.
func (t *Trace) load() error {
	s := t.spec
	var err error
	t.events, err = ebpf.NewMap(&ebpf.MapSpec{Name: "lambda_events", Type: ebpf.RingBuf, MaxEntries: uint32(s.RingBytes)})
	if err != nil {
		return fmt.Errorf("creating ring buffer map: %w", err)
	}
	t.objs = append(t.objs, t.events)
	t.lost, err = ebpf.NewMap(&ebpf.MapSpec{Name: "lambda_lost", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("creating lost counter map: %w", err)
	}
	t.objs = append(t.objs, t.lost)
	maps := progMaps{Events: t.events.FD(), Lost: t.lost.FD(), Starts: -1, Frames: -1, Hist: -1, WakeAt: int32(s.RingBytes / 2)}
	if s.Mode == messages.ModeCalls || s.Mode == messages.ModeSummary {
		starts, err := ebpf.NewMap(&ebpf.MapSpec{Name: "lambda_starts", Type: ebpf.Hash, KeySize: 16, ValueSize: 16, MaxEntries: startsEntries})
		if err != nil {
			return fmt.Errorf("creating call start map: %w", err)
		}
		t.objs = append(t.objs, starts)
		maps.Starts = starts.FD()
		if !t.info.Go && !noTaskFrames {
			frames, err := newFrameStorage()
			if err != nil {
				return fmt.Errorf("creating call frame storage: %w", err)
			}
			t.objs = append(t.objs, frames)
			maps.Frames = frames.FD()
		}
	}
	if s.Mode == messages.ModeSummary {
		t.hist, err = ebpf.NewMap(&ebpf.MapSpec{Name: "lambda_hist", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8,
			MaxEntries: uint32(len(t.info.Functions) * histBuckets)})
		if err != nil {
			return fmt.Errorf("creating histogram map: %w", err)
		}
		t.objs = append(t.objs, t.hist)
		maps.Hist = t.hist.FD()
	}
	if s.Mode != messages.ModeSummary {
		maps.CommOff = taskCommOffset()
	}
	t.maps = maps
	return nil
}

// taskCommOff is the offset of comm in the kernel's struct task_struct, 0
// when the kernel's BTF does not say (then the programs call
// bpf_get_current_comm).
var (
	taskCommOnce sync.Once
	taskCommOff  int16
)

// taskCommOffset returns taskCommOff, read from the kernel's BTF once.
func taskCommOffset() int16 {
	taskCommOnce.Do(func() {
		spec, err := btf.LoadKernelSpec()
		if err != nil {
			return
		}
		var task *btf.Struct
		if err := spec.TypeByName("task_struct", &task); err != nil {
			return
		}
		for _, m := range task.Members {
			a, ok := btf.UnderlyingType(m.Type).(*btf.Array)
			if m.Name != "comm" || !ok || a.Nelems != commSize || m.Offset%8 != 0 {
				continue
			}
			if off := m.Offset.Bytes(); off > 0 && off < 1<<15-16 {
				taskCommOff = int16(off)
			}
		}
	})
	return taskCommOff
}

// newFrameStorage creates the task storage of C calls' frame stacks (see
// taskFrameDepth): key and value need BTF, a u64 array for the value.
func newFrameStorage() (*ebpf.Map, error) {
	u64 := &btf.Int{Name: "u64", Size: 8}
	return ebpf.NewMap(&ebpf.MapSpec{
		Name:      "lambda_frames",
		Type:      ebpf.TaskStorage,
		KeySize:   4,
		ValueSize: taskFramesSize,
		Flags:     unix.BPF_F_NO_PREALLOC,
		Key:       &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
		Value:     &btf.Array{Index: u64, Type: u64, Nelems: taskFramesSize / 8},
	})
}

// newProgram loads the program s.
func (t *Trace) newProgram(s progSpec) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "lambda_probe",
		Type:         ebpf.Kprobe,
		Instructions: program(s, t.maps),
		License:      "GPL",
	})
	if err != nil {
		return nil, err
	}
	t.objs = append(t.objs, p)
	return p, nil
}

// attach loads the programs and attaches them to the file path names (the
// plan's descriptor), at the plan's file offsets: per function an entry
// uprobe and a uretprobe (C) or an uprobe at each RET (Go).
func (t *Trace) attach(path string) error {
	s := t.spec
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return err
	}
	entryKind, returnKind := progEventEntry, progEventReturn
	switch s.Mode {
	case messages.ModeCalls:
		entryKind, returnKind = progStart, progCallReturn
	case messages.ModeSummary:
		entryKind, returnKind = progStart, progSumReturn
	}
	goFrame := t.info.regabi()
	for i, fn := range t.info.Functions {
		base := progSpec{Function: i, GoFrame: goFrame, PID: uint32(s.PID)}
		entry := base
		entry.Kind = entryKind
		p, err := t.newProgram(entry)
		if err != nil {
			return fmt.Errorf("loading the entry program of %s: %w", fn.Name, err)
		}
		l, err := ex.Uprobe(fn.Name, p, &link.UprobeOptions{Address: fn.Addr, Offset: fn.Entry})
		if err != nil {
			return fmt.Errorf("attaching to the entry of %s: %w", fn.Name, err)
		}
		t.links = append(t.links, l)
		ret := base
		ret.Kind, ret.AtRet = returnKind, t.info.Go
		p, err = t.newProgram(ret)
		if err != nil {
			return fmt.Errorf("loading the return program of %s: %w", fn.Name, err)
		}
		if !t.info.Go {
			l, err := ex.Uretprobe(fn.Name, p, &link.UprobeOptions{Address: fn.Addr})
			if err != nil {
				return fmt.Errorf("attaching to the return of %s: %w", fn.Name, err)
			}
			t.links = append(t.links, l)
			continue
		}
		// Never a uretprobe in a Go binary: it replaces the return
		// address on the goroutine stack, which the Go runtime walks
		// (and copies) and then fails with "unknown caller pc".
		for _, off := range fn.Returns {
			l, err := ex.Uprobe(fn.Name, p, &link.UprobeOptions{Address: fn.Addr, Offset: off})
			if err != nil {
				return fmt.Errorf("attaching to the RET at +%#x of %s: %w", off, fn.Name, err)
			}
			t.links = append(t.links, l)
		}
	}
	return nil
}

// flushAt is how many formatted bytes are handed to Output at once (at
// most: every poll hands over what it formatted).
const flushAt = 192 << 10

// run reads the ring buffer until the trace ends, then ends it.
//
// A panic in it (formatting, reading) ends the trace as if it were
// stopped, with the panic in Wait's error: every probe is detached and the
// output closed, so the reader sees EOF; the endpoint goes on.
func (t *Trace) run(ctx context.Context) {
	defer close(t.done)
	defer func() {
		if p := recover(); p != nil {
			t.err = errors.Join(t.err, fmt.Errorf("native engine panicked: %v", p))
			t.res.Expired = t.expired.Load()
			t.releaseAfterPanic()
		}
	}()
	if runHook != nil {
		runHook()
	}
	var expire <-chan time.Time
	if t.spec.Lasting > 0 {
		tm := time.NewTimer(t.spec.Lasting)
		defer tm.Stop()
		expire = tm.C
	}
	f := newFormatter(t.spec.Process, t.names)
	buf, outOK := t.out.buffer()
	flush := func() {
		if len(buf) == 0 || !outOK {
			return
		}
		if n := len(buf); t.out.send(buf) {
			t.res.Bytes += uint64(n)
			buf, outOK = t.out.buffer()
		} else {
			outOK = false
		}
		if !outOK {
			buf = nil // the reader closed Output: keep draining, drop
		}
	}
	var rec ringbuf.Record
	drain := func() error {
		for {
			err := t.rd.ReadInto(&rec)
			switch {
			case err == nil:
				t.res.Records++
				if outOK {
					buf, _ = f.appendRecord(buf, rec.RawSample)
					if len(buf) >= flushAt {
						flush()
					}
				}
			case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
				return nil
			default:
				return fmt.Errorf("reading ring buffer: %w", err)
			}
		}
	}
	var runErr error
loop:
	for {
		t.rd.SetDeadline(time.Now().Add(t.poll))
		if runErr = drain(); runErr != nil {
			break
		}
		flush()
		select {
		case <-t.stop:
			break loop
		case <-ctx.Done():
			break loop
		case <-expire:
			t.expired.Store(true)
			break loop
		default:
		}
	}
	// Detach first, so that what the ring holds now is all there is.
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detaching probe: %w", err))
		}
	}
	t.links = nil
	if runErr == nil {
		t.rd.SetDeadline(time.Now())
		if err := drain(); err != nil {
			errs = append(errs, err)
		}
	}
	if t.hist != nil {
		var err error
		if buf, err = t.appendSummaries(buf); err != nil {
			errs = append(errs, err)
		}
	}
	flush()
	lost, err := sumPerCPU(t.lost, 0)
	if err != nil {
		errs = append(errs, fmt.Errorf("reading lost counter: %w", err))
	}
	t.res.LostEvents = lost
	t.res.Expired = t.expired.Load()
	t.err = errors.Join(errs...)
	t.release()
}

// appendSummaries appends the summary line of every function that
// completed a call, in the order of the functions.
func (t *Trace) appendSummaries(b []byte) ([]byte, error) {
	hist := make([]uint64, histBuckets)
	for i, name := range t.names {
		for bucket := range hist {
			n, err := sumPerCPU(t.hist, uint32(i*histBuckets+bucket))
			if err != nil {
				return b, fmt.Errorf("reading histogram of %s: %w", name, err)
			}
			hist[bucket] = n
		}
		b = appendSummary(b, t.spec.Process, name, hist)
	}
	return b, nil
}

// sumPerCPU returns the sum over CPUs of the u64 at key of a per-CPU array.
func sumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var vals []uint64
	if err := m.Lookup(key, &vals); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range vals {
		n += v
	}
	return n, nil
}

// releaseAfterPanic is release for a run that panicked: the lost counter
// is read first if it can be, and a second panic is not let out.
func (t *Trace) releaseAfterPanic() {
	defer func() { _ = recover() }()
	if t.lost != nil {
		if lost, err := sumPerCPU(t.lost, 0); err == nil {
			t.res.LostEvents = lost
		}
	}
	t.release()
}

// release closes everything the trace holds but the caller's read end of
// Output: links (which detaches the probes), the ring buffer reader,
// programs and maps, and Output's writing side (EOF for the
// reader). Run by the trace's goroutine at its end, or by Start on failure.
func (t *Trace) release() {
	for _, l := range t.links {
		_ = l.Close()
	}
	t.links = nil
	if t.rd != nil {
		_ = t.rd.Close()
	}
	for i := len(t.objs) - 1; i >= 0; i-- {
		_ = t.objs[i].Close()
	}
	t.objs = nil
	if t.out != nil {
		t.out.end()
	}
}

// Output returns the trace's output: JSON lines as the bpftrace scripts of
// tracer.Script print them, the same shape whichever engine runs. It also
// has SetReadDeadline(time.Time) error, so a reader can wake up while the
// trace is quiet. EOF comes after the trace ended and everything was
// written. The caller must read it until EOF or call CloseOutput: the
// trace blocks (and the ring buffer fills, counted as lost) while Output
// is full.
func (t *Trace) Output() io.Reader { return t.out }

// CloseOutput closes Output early, for a caller that stops reading; what
// the trace writes from then on is dropped. A pending Read returns an
// error wrapping os.ErrClosed.
func (t *Trace) CloseOutput() error { return t.out.Close() }

// Stop ends the trace: within a poll interval the probes are detached,
// the ring buffer is drained, the summary written (mode summary) and
// Output reaches EOF. It does not wait; see Done and Wait.
func (t *Trace) Stop() { t.stopOne.Do(func() { close(t.stop) }) }

// Done returns a channel closed when the trace has ended and released
// every probe, map and program.
func (t *Trace) Done() <-chan struct{} { return t.done }

// Wait blocks until Done and returns what the trace counted, and an error
// if reading or detaching failed (the Result is still valid).
func (t *Trace) Wait() (Result, error) {
	<-t.done
	return t.res, t.err
}
