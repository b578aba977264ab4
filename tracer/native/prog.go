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
	Hist   int // per-CPU array of u64, histBuckets per function
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
		in = append(in, fillTask()...)
		in = append(in, submit(m)...)
	case progStart:
		in = append(in, frameKey(s)...)
		in = append(in,
			asm.FnKtimeGetNs.Call(),
			asm.StoreMem(asm.RFP, stValNs, asm.R0, asm.DWord),
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
			in = append(in, fillTask()...)
			in = append(in, submit(m)...)
			break
		}
		// Summary: bucket = bit length of the duration, by halving.
		in = append(in,
			asm.LoadMem(asm.R1, asm.RFP, stNow, asm.DWord),
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
func fillTask() asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.StoreMem(asm.R7, offPidTgid, asm.R0, asm.DWord),
		asm.FnGetCurrentUidGid.Call(),
		asm.StoreMem(asm.R7, offUidGid, asm.R0, asm.DWord),
		asm.FnGetSmpProcessorId.Call(),
		asm.StoreMem(asm.R7, offCPU, asm.R0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, offComm),
		asm.Mov.Imm(asm.R2, commSize),
		asm.FnGetCurrentComm.Call(),
	}
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
