// Package spool is lambda-endpoint's durable, per-trace store of output
// chunks. The tracer's stdout, cut into numbered chunks (0, 1, 2, ...), is
// appended to the trace's spool before it is sent; a sender reads the
// chunks back in order and acknowledges each one after the platform
// answered 2xx. The spool outlives the process: after a crash, Open
// recovers it and delivery resumes at the first unacknowledged chunk with
// the same numbers and the same bytes, which the platform deduplicates by
// (trace, no). It follows the disk buffers of Fluent Bit, Vector and the
// OpenTelemetry collector's persistent queue: an append-only log in
// segment files, a small separately written read position, and a recovery
// that validates every record.
//
// A Spool owns its directory and the files in it; one process may hold a
// spool open at a time (Open and Create take a lock and fail with
// ErrLocked otherwise; within one process the caller must not open a
// spool twice). Memory is 8 bytes per chunk still on disk for the index,
// never the chunk data.
//
// # Usage
//
// The appender calls Append for each chunk and Seal when the tracer is
// done, or lets a Writer do it: a Writer cuts a byte stream into chunks
// (at newlines, at most a chunk size, short ones on Flush), keeps what it
// has not cut yet in the staging file so a crash loses none of it, and
// seals on Close; RecoverStaged appends a crashed Writer's staged bytes.
// The sender loops
//
//	for no := sp.Acked(); ; no++ {
//		if err := sp.Wait(ctx, no); err == io.EOF { break } // sealed, all sent
//		data, _ := sp.Read(no)
//		submit(no, data) // retried until 2xx
//		sp.Ack(no)
//	}
//
// then sends the finished message with Next, Bytes and SHA256, and calls
// Remove once that was acknowledged. Meta and SetMeta keep the caller's
// description of the run (JSON) next to the chunks, so that a restarted
// endpoint knows what each spool found by List belongs to.
//
// # Files
//
// A spool directory (mode 0700, files 0600) holds:
//
//	meta                       the caller's bytes, replaced atomically:
//	                           meta.tmp is written and fsynced, renamed over
//	                           meta, and the directory fsynced
//	state                      the acknowledged position (two slots)
//	00000000000000000000.seg   segment files, named by their first chunk
//	staged                     a Writer's bytes not yet cut into a chunk
//	                           (records of them, see below)
//
// All integers are little-endian; checksums are CRC-32C (Castagnoli).
//
// A segment file starts with a 160-byte header: magic "SPSG" (u32),
// version 1 (u16), hash state length (u16), first chunk number (u64),
// chunk bytes before it (u64), the marshalled SHA-256 state over all
// chunks before it (crypto/sha256's MarshalBinary, zero-padded to 128
// bytes), 4 zero bytes, and the CRC of the preceding 156 bytes (u32). Then
// come the records of consecutive chunks:
//
//	magic "SPCK" u32 | chunk number u64 | data length u32 | CRC u32 | data
//
// where the CRC covers the 16 bytes before it and the data. A segment is
// filled to Options.SegmentBytes, then the next chunk starts a new one.
// Segments whose chunks are all acknowledged are deleted, except the last.
//
// The state file holds two 192-byte slots at offsets 0 and 4096 (never in
// the same page): magic "SPST" (u32), version 1 (u16), hash state length
// (u16), sequence number (u64), acknowledged chunks (u64), their bytes
// (u64), flags (u32, 1 = sealed), the SHA-256 state over the acknowledged
// chunks (padded to 128 bytes), 24 zero bytes, and the CRC of the
// preceding 188 bytes (u32). Every Ack and Seal writes the slot that does
// not hold the newest copy, in place, with the next sequence number; Open
// takes the valid slot with the highest sequence number. A torn or
// corrupt slot therefore falls back to the previous position, and an
// acknowledgement costs one small pwrite, no rename and (except under
// SyncAlways) no fsync.
//
// The staging file starts with the magic "LESTREC2" (8 bytes), then come
// records of the bytes a Writer holds uncut:
//
//	stream offset u64 | data length u32 | CRC u32 | data
//
// where the stream offset is that of the first byte in the Writer's stream
// (the spool's Bytes is where the bytes not in chunks start) and the CRC
// covers the 12 bytes before it and the data. Each Write appends at most
// one record, after the chunks it cut were appended: the bytes of that
// Write left uncut, none when all went into chunks. Records have
// increasing, non-overlapping offsets; the bytes between them are in
// chunks. Past 8 MiB the file is replaced (a temporary file written and
// renamed) by one whose only record holds the bytes not in a chunk.
// Reading it back from the spool's Bytes on, a last record cut short or
// failing its CRC (the process died while writing it) is ignored; damage
// before it, or a stream byte from the spool's end on that no record holds
// though a later record exists, is an error. A version 1 file (magic
// "LESTAGE1", the stream offset of its first byte u64, every byte written)
// is read too.
//
// The SHA-256 of all chunks survives the deletion of acknowledged
// segments and restarts because its state is stored at both ends: in each
// segment header (the hash up to its first chunk) and in the state slot
// (the hash up to the acknowledged position). Open continues from the
// first kept segment's header over the records on disk.
//
// # Crash guarantees
//
// Append writes the record with pwrite(2) before it returns, so a killed
// process (SIGKILL, panic, OOM kill) loses nothing that Append returned
// for: the data is in the page cache, and Open finds it. An Ack that
// returned is likewise never lost to a killed process, nor a byte a
// Writer's Write returned for: it is in a chunk or in a staging record,
// both written before Write returns. The staging file is never fsynced:
// a power cut can lose what it holds.
//
// A power cut or kernel crash loses what was not fsynced:
//
//   - SyncAlways: nothing Append or Ack returned for (each fsyncs first).
//   - SyncInterval: at most the chunks appended and the acknowledgements
//     made in the last Options.SyncEvery (default 1s), plus writes made
//     while that fsync ran. Seal, Close and segment rotation fsync too.
//   - SyncNever: anything since the operating system last wrote back.
//
// Open validates every record and keeps the longest valid prefix of the
// chunk sequence. A torn tail (a record cut short, a flipped byte, trailing
// garbage or zeros) is truncated away, and appending continues with the
// next number after the last valid chunk. Damage in the middle is treated
// the same way: everything from the first bad record on is dropped, later
// segments included, because the platform must see gapless numbers and a
// record boundary after damage cannot be trusted. The one exception is a
// hole that lies entirely within acknowledged chunks (a segment deleted
// out of order): the segments after it are kept. Everything dropped is
// reported in Recovery.
//
// A lost acknowledgement write (only a power cut can lose one) moves the
// acknowledged position back: those chunks are sent again with the same
// numbers and identical bytes, and the platform deduplicates them. The
// opposite case, acknowledged chunks whose data a power cut lost, needs no
// resend: numbering continues at the acknowledged position and the hash
// comes from the state slot. The acknowledged position is never behind
// the oldest segment on disk either, since segments are deleted only
// after their chunks were acknowledged.
//
// What no local store can undo: an unacknowledged chunk that was sent, then
// lost from disk by a power cut, is not sent again, and a chunk appended
// afterwards would reuse its number. lambda-endpoint seals a spool it
// recovers after a restart (the tracer died with the endpoint), so no
// number is reused in practice.
//
// After a failed fsync the spool cannot know what is durable; every later
// Append, Ack and Seal returns that error (the fsyncgate lesson), and the
// caller should Close and Open the spool again.
package spool
