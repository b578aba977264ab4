-- Every started trace. No foreign key to templates: a run keeps a snapshot
-- of its template (info) and outlives the template's deletion.
CREATE TABLE runs (
    path         text PRIMARY KEY,
    template_id  bigint NOT NULL,
    type         text NOT NULL CHECK (type IN ('BPF', 'STAP')),
    info         jsonb NOT NULL CHECK (jsonb_typeof(info) = 'object'),
    mode         text NOT NULL,
    thread       bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    lasting      bigint NOT NULL,
    state        text NOT NULL,
    exit_code    integer,
    reason       text NOT NULL,
    bytes_read   bigint NOT NULL,
    chunks_sent  bigint NOT NULL,
    chunks_acked bigint NOT NULL,
    sha256       text NOT NULL,
    finished_at  timestamptz
);

-- ListRuns walks (started_at, thread) backwards.
CREATE INDEX runs_started_at_idx ON runs (started_at, thread);

-- Restart recovery lists the runs still owed to the platform by state.
CREATE INDEX runs_state_idx ON runs (state);
