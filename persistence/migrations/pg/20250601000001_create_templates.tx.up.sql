-- Trace templates. Ids come from a sequence and are never reused, so an id
-- the platform still holds can never address a newer template.
CREATE TABLE templates (
    id          bigserial PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('BPF', 'STAP')),
    process     text NOT NULL,
    functions   jsonb NOT NULL CHECK (jsonb_typeof(functions) = 'array'),
    environment jsonb NOT NULL CHECK (jsonb_typeof(environment) = 'array'),
    value       jsonb NOT NULL CHECK (jsonb_typeof(value) = 'array'),
    options     jsonb NOT NULL CHECK (jsonb_typeof(options) = 'array'),
    created_at  timestamptz NOT NULL
);
