-- What ran each BPF run: bpftrace or the native engine. Rows of earlier
-- versions get '' (not recorded): they were all bpftrace runs, and the
-- store reads '' of a BPF run as 'bpftrace'. STAP runs (stap) keep ''.
ALTER TABLE runs ADD COLUMN engine TEXT NOT NULL DEFAULT ''
    CHECK (engine IN ('', 'bpftrace', 'native') AND (engine = '' OR type = 'BPF'));
