-- What ran each BPF run: bpftrace or the native engine. Rows of earlier
-- versions get '' (not recorded): they were all bpftrace runs, and the
-- store reads '' of a BPF run as 'bpftrace'. STAP runs (stap) keep ''.
ALTER TABLE runs ADD COLUMN engine text NOT NULL DEFAULT '';
ALTER TABLE runs ADD CONSTRAINT runs_engine_check
    CHECK (engine IN ('', 'bpftrace', 'native') AND (engine = '' OR type = 'BPF'));
