-- Trace templates. AUTOINCREMENT keeps ids from being reused after a
-- delete, so an id the platform still holds can never address a newer
-- template. STRICT makes SQLite refuse values of the wrong type. Lists are
-- JSON text; times are bun's UTC text form, which sorts chronologically.
CREATE TABLE templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT NOT NULL CHECK (type IN ('BPF', 'STAP')),
    process     TEXT NOT NULL,
    functions   TEXT NOT NULL CHECK (json_type(functions) = 'array'),
    environment TEXT NOT NULL CHECK (json_type(environment) = 'array'),
    value       TEXT NOT NULL CHECK (json_type(value) = 'array'),
    options     TEXT NOT NULL CHECK (json_type(options) = 'array'),
    created_at  TEXT NOT NULL
) STRICT;
