-- Officials' web sessions (services/intake/web_signin.py): the browser holds a random id, this
-- table its SHA-256, so a copy of the table opens no session. Sign-ins under way live here for
-- a few minutes, between the redirect to the identity provider and the way back.
CREATE TABLE web_sessions (
    key          text        PRIMARY KEY,
    subject      text        NOT NULL,
    username     text        NOT NULL,
    name         text        NOT NULL,
    roles        text[]      NOT NULL,
    unit_code    text,
    id_token     text,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

CREATE TABLE web_sign_ins (
    state         text        PRIMARY KEY,
    code_verifier text        NOT NULL,
    next_path     text        NOT NULL,
    expires_at    timestamptz NOT NULL
);
