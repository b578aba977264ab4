package native

import (
	"strconv"

	"github.com/cilium/ebpf/asm"
)

// progKind is what one BPF program does.
type progKind int

const (
	progEventEntry  progKind = iota // mode events, entry: an entry record
	progEventReturn                 // mode events, return: a return record
	progStart                       // modes calls and summary, entry: store the entry time
	progCallReturn                  // mode calls, return: a call record
	progSumReturn                   // mode summary, return: count the call in the histogram
)

// progSpec is one BPF program: its kind, the function it belongs to and how
// it finds the call's frame.
type progSpec struct {
	Kind     progKind
	Function int
	// GoFrame keys calls by goroutine and stack depth (Go, register ABI)
	// instead of by thread and stack pointer (C).
	GoFrame bool
	// AtRet: the program runs at a RET instruction (Go) rather than in a
	// uretprobe, so the stack pointer still points at the return address.
	AtRet bool
	// PID, when non-zero, is the only process (thread group) recorded.
	PID uint32
}

// progMaps are the maps the programs use, as file descriptors.
type progMaps struct {
	Events int // ring buffer of records
	Lost   int // per-CPU array, one u64: records and calls that could not be kept
	Starts int // hash: frame key -> (entry time, function)
	// Frames, when not -1, is the task storage of C calls (see
	// taskFrames): each thread's innermost pending calls, the hash Starts
	// only for those beyond taskFrameDepth.
	Frames int
	Hist   int // per-CPU array of u64, histBuckets per function
	// CommOff, when not 0, is the offset of comm in the kernel's struct
	// task_struct (from its BTF): the programs read the comm from the
	// current task directly, two loads, instead of calling
	// bpf_get_current_comm, which costs a record about 100 ns more.
	CommOff int16
	// WakeAt is the number of bytes waiting in the ring buffer beyond
	// which a record wakes the reader up at once (BPF_RB_FORCE_WAKEUP)
	// instead of waiting for its next poll (BPF_RB_NO_WAKEUP).
	WakeAt int32
}

// Offsets in struct pt_regs on x86-64.
const (
	regsR14 = 8
	regsAX  = 80
	regsSP  = 152
)

// The per-task frame stack of C calls (modes calls and summary), the value
// of the task storage map progMaps.Frames, u64s:
//
//	0              depth: pending calls in the stack, 0..taskFrameDepth
//	8 + 24*i       frame i (0 outermost): stack pointer at entry
//	16 + 24*i      entry time
//	24 + 24*i      function index
//
// A thread's frames nest, so its pending calls form a stack ordered by
// stack pointer (the stack grows down): a return matches the innermost
// frame with its stack pointer, and frames below it (deeper, with a lower
// stack pointer) are calls that will never return (longjmp), dropped. An
// entry drops the frames at or below its own stack pointer for the same
// reason: the hash map overwrote such an entry. Calls deeper than
// taskFrameDepth go to the hash map Starts as before, so nothing is lost
// that was not lost before.
const (
	taskFrameDepth = 16
	taskFrameSize  = 24
	taskFramesSize = 8 + taskFrameDepth*taskFrameSize
)

// Flags of bpf_task_storage_get.
const taskStorageCreate = 1 // BPF_LOCAL_STORAGE_GET_F_CREATE

// Flags of bpf_ringbuf_submit and bpf_ringbuf_query.
const (
	rbNoWakeup    = 1
	rbForceWakeup = 2
	rbAvailData   = 0
)

// Stack slots (offsets from R10).
const (
	stKeyA  = -16 // frame key, first half: tid or goroutine
	stKeyB  = -8  // frame key, second half: stack pointer or depth
	stValNs = -32 // start value: entry time
	stValFn = -24 // start value: function
	stHi    = -40 // goroutine's stack.hi read from user memory
	stNow   = -48 // time at return
	stIdx   = -56 // u32 map index
)

// program returns the instructions of the program s with the maps m.
//
// Register use: R6 holds the context (struct pt_regs *) throughout, R7 a
// reserved record, R8 and R9 the start entry's time and function.
func program(s progSpec, m progMaps) asm.Instructions {
	in := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	if s.PID != 0 {
		in = append(in,
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(s.PID), "exit"),
		)
	}
	switch s.Kind {
	case progEventEntry, progEventReturn:
		kind := kindEntry
		if s.Kind == progEventReturn {
			kind = kindReturn
		}
		in = append(in, reserve(m)...)
		in = append(in,
			asm.FnKtimeGetNs.Call(),
			asm.StoreMem(asm.R7, offTime, asm.R0, asm.DWord),
		)
		if kind == kindReturn {
			in = append(in,
				asm.LoadMem(asm.R1, asm.R6, regsAX, asm.DWord),
				asm.StoreMem(asm.R7, offRetval, asm.R1, asm.DWord),
			)
		} else {
			in = append(in, asm.StoreImm(asm.R7, offRetval, 0, asm.Word), asm.StoreImm(asm.R7, offRetval+4, 0, asm.Word))
		}
		in = append(in,
			asm.StoreImm(asm.R7, offDuration, 0, asm.Word),
			asm.StoreImm(asm.R7, offDuration+4, 0, asm.Word),
			asm.StoreImm(asm.R7, offFunction, int64(s.Function|kind<<16), asm.Word),
		)
		in = append(in, fillTask(m)...)
		in = append(in, submit(m)...)
	case progStart:
		key := frameKey(s)
		if m.Frames >= 0 && !s.GoFrame {
			// The frame stack, or the hash map from push_hash on.
			in = append(in, taskPush(s, m)...)
			key[0] = key[0].WithSymbol("push_hash")
		} else {
			in = append(in,
				asm.FnKtimeGetNs.Call(),
				asm.StoreMem(asm.RFP, stValNs, asm.R0, asm.DWord),
			)
		}
		in = append(in, key...)
		in = append(in,
			asm.StoreImm(asm.RFP, stValFn, int64(s.Function), asm.Word),
			asm.StoreImm(asm.RFP, stValFn+4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, m.Starts),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stKeyA),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, stValNs),
			asm.Mov.Imm(asm.R4, 0), // BPF_ANY
			asm.FnMapUpdateElem.Call(),
			asm.JNE.Imm(asm.R0, 0, "lost"),
			asm.Ja.Label("exit"),
		)
	case progCallReturn, progSumReturn:
		in = append(in,
			asm.FnKtimeGetNs.Call(),
			asm.StoreMem(asm.RFP, stNow, asm.R0, asm.DWord),
		)
		if m.Frames >= 0 && !s.GoFrame {
			in = append(in, taskPop(s, m)...)
		}
		in = append(in, frameKey(s)...)
		in = append(in,
			asm.LoadMapPtr(asm.R1, m.Starts),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stKeyA),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "exit"),
			asm.LoadMem(asm.R8, asm.R0, 0, asm.DWord),
			asm.LoadMem(asm.R9, asm.R0, 8, asm.DWord),
			asm.LoadMapPtr(asm.R1, m.Starts),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stKeyA),
			asm.FnMapDeleteElem.Call(),
		)
		if s.Kind == progCallReturn {
			in = append(in, reserve(m)...)
			in[len(in)-len(reserve(m))] = in[len(in)-len(reserve(m))].WithSymbol("matched")
			in = append(in,
				asm.StoreMem(asm.R7, offTime, asm.R8, asm.DWord),
				asm.LoadMem(asm.R1, asm.R6, regsAX, asm.DWord),
				asm.StoreMem(asm.R7, offRetval, asm.R1, asm.DWord),
				asm.LoadMem(asm.R1, asm.RFP, stNow, asm.DWord),
				asm.Sub.Reg(asm.R1, asm.R8),
				asm.StoreMem(asm.R7, offDuration, asm.R1, asm.DWord),
				asm.Or.Imm(asm.R9, kindCall<<16),
				asm.StoreMem(asm.R7, offFunction, asm.R9, asm.Word),
			)
			in = append(in, fillTask(m)...)
			in = append(in, submit(m)...)
			break
		}
		// Summary: bucket = bit length of the duration, by halving.
		in = append(in,
			asm.LoadMem(asm.R1, asm.RFP, stNow, asm.DWord).WithSymbol("matched"),
			asm.Sub.Reg(asm.R1, asm.R8), // R1 = duration
			asm.Mov.Imm(asm.R3, 0),      // R3 = bucket
		)
		for i, sh := range []int32{32, 16, 8, 4, 2, 1} {
			step := asm.Mov.Reg(asm.R2, asm.R1)
			if i > 0 {
				step = step.WithSymbol("bit" + strconv.Itoa(i))
			}
			in = append(in,
				step,
				asm.RSh.Imm(asm.R2, sh),
				asm.JEq.Imm(asm.R2, 0, "bit"+strconv.Itoa(i+1)),
				asm.Mov.Reg(asm.R1, asm.R2),
				asm.Add.Imm(asm.R3, sh),
			)
		}
		in = append(in,
			asm.Add.Reg(asm.R3, asm.R1).WithSymbol("bit6"),
			// index = function*histBuckets + bucket
			asm.Mul.Imm(asm.R9, histBuckets),
			asm.Add.Reg(asm.R9, asm.R3),
			asm.StoreMem(asm.RFP, stIdx, asm.R9, asm.Word),
			asm.LoadMapPtr(asm.R1, m.Hist),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stIdx),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "exit"),
			asm.Mov.Imm(asm.R1, 1),
			asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
			asm.Return(),
		)
		return in // no "lost" block: the verifier refuses unreachable code
	}
	// lost: count one record or call that could not be kept.
	in = append(in,
		asm.StoreImm(asm.RFP, stIdx, 0, asm.Word).WithSymbol("lost"),
		asm.LoadMapPtr(asm.R1, m.Lost),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stIdx),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return in
}

// taskPush stores the entry of a C call in the thread's frame stack (see
// taskFrameDepth) and jumps to exit; it falls through (or jumps to
// push_hash) to the hash map's code, with the entry time at stValNs, when
// its stack is full (or the thread has no storage). Registers: R7 the stack, R8 its depth, R9 the stack
// pointer.
func taskPush(s progSpec, m progMaps) asm.Instructions {
	in := asm.Instructions{
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, stValNs, asm.R0, asm.DWord),
		asm.FnGetCurrentTaskBtf.Call(),
		asm.Mov.Reg(asm.R2, asm.R0),
		asm.LoadMapPtr(asm.R1, m.Frames),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, taskStorageCreate),
		asm.FnTaskStorageGet.Call(),
		asm.JEq.Imm(asm.R0, 0, "push_hash"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadMem(asm.R8, asm.R7, 0, asm.DWord),
		asm.LoadMem(asm.R9, asm.R6, regsSP, asm.DWord),
	}
	// Drop the frames at or below this one's stack pointer.
	for range taskFrameDepth {
		in = append(in, frameAt(asm.R8, "push")...)
		in = append(in,
			asm.LoadMem(asm.R3, asm.R2, 8, asm.DWord),
			asm.JGT.Reg(asm.R3, asm.R9, "push"),
			asm.Sub.Imm(asm.R8, 1),
		)
	}
	in = append(in,
		asm.JGE.Imm(asm.R8, taskFrameDepth, "push_full").WithSymbol("push"),
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.Mul.Imm(asm.R8, taskFrameSize),
		asm.Add.Reg(asm.R7, asm.R8),
		asm.StoreMem(asm.R7, 8, asm.R9, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, stValNs, asm.DWord),
		asm.StoreMem(asm.R7, 16, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, int32(s.Function)),
		asm.StoreMem(asm.R7, 24, asm.R1, asm.DWord),
		asm.Ja.Label("exit"),
		// Full: store the depth left after dropping; the hash map's code
		// follows (push_hash).
		asm.StoreMem(asm.R7, 0, asm.R8, asm.DWord).WithSymbol("push_full"),
	)
	return in
}

// taskPop finds the return of a C call in the thread's frame stack and
// jumps to matched with R8 the entry time and R9 the function; it falls
// through to the hash map's code when the call is not there (deeper than
// taskFrameDepth, or entered before the trace). Expects the return time at
// stNow; uses R7 (the stack), R8 (its depth) and R9 (the entry's stack
// pointer).
func taskPop(s progSpec, m progMaps) asm.Instructions {
	in := asm.Instructions{
		asm.FnGetCurrentTaskBtf.Call(),
		asm.Mov.Reg(asm.R2, asm.R0),
		asm.LoadMapPtr(asm.R1, m.Frames),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnTaskStorageGet.Call(),
		asm.JEq.Imm(asm.R0, 0, "pop_hash"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadMem(asm.R8, asm.R7, 0, asm.DWord),
		asm.LoadMem(asm.R9, asm.R6, regsSP, asm.DWord),
	}
	if !s.AtRet {
		in = append(in, asm.Sub.Imm(asm.R9, 8)) // RET popped the return address
	}
	for range taskFrameDepth {
		in = append(in, frameAt(asm.R8, "pop_miss")...)
		in = append(in,
			asm.LoadMem(asm.R3, asm.R2, 8, asm.DWord),
			asm.JEq.Reg(asm.R3, asm.R9, "pop_hit"),
			asm.JGT.Reg(asm.R3, asm.R9, "pop_miss"),
			asm.Sub.Imm(asm.R8, 1), // deeper: a call that never returns
		)
	}
	return append(in,
		asm.StoreMem(asm.R7, 0, asm.R8, asm.DWord).WithSymbol("pop_miss"),
		asm.Ja.Label("pop_hash"),
		asm.Sub.Imm(asm.R8, 1).WithSymbol("pop_hit"),
		asm.StoreMem(asm.R7, 0, asm.R8, asm.DWord),
		asm.LoadMem(asm.R8, asm.R2, 16, asm.DWord),
		asm.LoadMem(asm.R9, asm.R2, 24, asm.DWord),
		asm.Ja.Label("matched"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("pop_hash"), // the hash map's code follows
	)
}

// frameAt points R2 at the top frame of the stack at R7 of depth d, or
// jumps to empty when d is 0 (or out of range, for the verifier).
func frameAt(d asm.Register, empty string) asm.Instructions {
	return asm.Instructions{
		asm.JEq.Imm(d, 0, empty),
		asm.Mov.Reg(asm.R1, d),
		asm.Sub.Imm(asm.R1, 1),
		asm.JGT.Imm(asm.R1, taskFrameDepth-1, empty),
		asm.Mul.Imm(asm.R1, taskFrameSize),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Reg(asm.R2, asm.R1),
	}
}

// reserve reserves a record in the ring buffer into R7, or jumps to lost.
func reserve(m progMaps) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.Events),
		asm.Mov.Imm(asm.R2, recordSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "lost"),
		asm.Mov.Reg(asm.R7, asm.R0),
	}
}

// fillTask fills the record at R7 with the task's ids, CPU and comm.
func fillTask(m progMaps) asm.Instructions {
	in := asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.StoreMem(asm.R7, offPidTgid, asm.R0, asm.DWord),
		asm.FnGetCurrentUidGid.Call(),
		asm.StoreMem(asm.R7, offUidGid, asm.R0, asm.DWord),
		asm.FnGetSmpProcessorId.Call(),
		asm.StoreMem(asm.R7, offCPU, asm.R0, asm.Word),
	}
	if m.CommOff != 0 {
		// current->comm, 16 bytes: what bpf_get_current_comm copies (the
		// kernel keeps it NUL-padded), read through the task's BTF
		// pointer (the verifier checks the offset against its type).
		return append(in,
			asm.FnGetCurrentTaskBtf.Call(),
			asm.LoadMem(asm.R1, asm.R0, m.CommOff, asm.DWord),
			asm.StoreMem(asm.R7, offComm, asm.R1, asm.DWord),
			asm.LoadMem(asm.R1, asm.R0, m.CommOff+8, asm.DWord),
			asm.StoreMem(asm.R7, offComm+8, asm.R1, asm.DWord),
		)
	}
	return append(in,
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, offComm),
		asm.Mov.Imm(asm.R2, commSize),
		asm.FnGetCurrentComm.Call(),
	)
}

// submit submits the record at R7 without waking the reader, unless more
// than m.WakeAt bytes are waiting (then the reader is woken at once, so a
// burst does not fill the ring before the next poll), and jumps to exit.
func submit(m progMaps) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.Events),
		asm.Mov.Imm(asm.R2, rbAvailData),
		asm.FnRingbufQuery.Call(),
		asm.Mov.Imm(asm.R2, rbNoWakeup),
		asm.JLE.Imm(asm.R0, m.WakeAt, "submit"),
		asm.Mov.Imm(asm.R2, rbForceWakeup),
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("submit"),
		asm.FnRingbufSubmit.Call(),
		asm.Ja.Label("exit"),
	}
}

// frameKey writes the key of the call's frame to the stack (stKeyA,
// stKeyB), the same at entry and at return.
//
// C: (tid, stack pointer at entry); a uretprobe runs after RET popped the
// return address, so it subtracts 8. Go (register ABI): (goroutine, depth
// g.stack.hi - SP), which stays the same when the goroutine moves to
// another thread or its stack is copied to grow it during the call; a
// return probe at a RET sees the entry's stack pointer.
func frameKey(s progSpec) asm.Instructions {
	if !s.GoFrame {
		in := asm.Instructions{
			asm.FnGetCurrentPidTgid.Call(),
			asm.LSh.Imm(asm.R0, 32),
			asm.RSh.Imm(asm.R0, 32),
			asm.StoreMem(asm.RFP, stKeyA, asm.R0, asm.DWord),
			asm.LoadMem(asm.R1, asm.R6, regsSP, asm.DWord),
		}
		if !s.AtRet && s.Kind != progStart {
			in = append(in, asm.Sub.Imm(asm.R1, 8))
		}
		return append(in, asm.StoreMem(asm.RFP, stKeyB, asm.R1, asm.DWord))
	}
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.R6, regsR14, asm.DWord),
		asm.StoreMem(asm.RFP, stKeyA, asm.R1, asm.DWord),
		// g.stack.hi: struct g starts with stack{lo, hi uintptr}.
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.Add.Imm(asm.R3, 8),
		asm.StoreImm(asm.RFP, stHi, 0, asm.Word),
		asm.StoreImm(asm.RFP, stHi+4, 0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, stHi),
		asm.Mov.Imm(asm.R2, 8),
		asm.FnProbeReadUser.Call(),
		asm.JEq.Imm(asm.R0, 0, "hi_ok"),
		asm.StoreImm(asm.RFP, stHi, 0, asm.Word),
		asm.StoreImm(asm.RFP, stHi+4, 0, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stHi, asm.DWord).WithSymbol("hi_ok"),
		asm.LoadMem(asm.R2, asm.R6, regsSP, asm.DWord),
		asm.Sub.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, stKeyB, asm.R1, asm.DWord),
	}
}
