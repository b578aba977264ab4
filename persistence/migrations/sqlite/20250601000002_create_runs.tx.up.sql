-- Every started trace. No foreign key to templates: a run keeps a snapshot
-- of its template (info) and outlives the template's deletion.
CREATE TABLE runs (
    path         TEXT PRIMARY KEY NOT NULL,
    template_id  INTEGER NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('BPF', 'STAP')),
    info         TEXT NOT NULL CHECK (json_type(info) = 'object'),
    mode         TEXT NOT NULL,
    thread       INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    lasting      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    exit_code    INTEGER,
    reason       TEXT NOT NULL,
    bytes_read   INTEGER NOT NULL,
    chunks_sent  INTEGER NOT NULL,
    chunks_acked INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    finished_at  TEXT
) STRICT;

-- ListRuns walks (started_at, thread) backwards.
CREATE INDEX runs_started_at_idx ON runs (started_at, thread);

-- Restart recovery lists the runs still owed to the platform by state.
CREATE INDEX runs_state_idx ON runs (state);
