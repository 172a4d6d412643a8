-- hancha: console logins, the web console's staff accounts and their sessions (README "Web
-- console (控制台)").
--
-- Both live in the database so that every replica of the node knows every account and every
-- session, and agrees on lockouts: the failed attempts are counted here, under a row lock.
-- A password is kept only as its Argon2id hash (PHC string); a session only as the SHA-256 of
-- its secret (the cookie's value), like an API token (0018): a copy of the database lets
-- nobody log in or take over a session.
CREATE TABLE console_accounts (
    -- the name audit records give the principal: never something like an ID number (as 0003)
    name            text PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 64
                                            AND name !~ '[[:space:]]' AND name !~ '[0-9]{14}'),
    role            text NOT NULL CHECK (role IN ('county', 'township')),
    township        text CHECK (township ~ '^[0-9]{9}$'),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    password_set_at timestamptz NOT NULL DEFAULT now(),
    -- a disabled account cannot log in, and its sessions stop working at once
    disabled_at     timestamptz,
    -- wrong passwords in a row since the last success, lock or unlock
    failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until    timestamptz,
    CHECK ((role = 'township') = (township IS NOT NULL))
);

CREATE TABLE console_sessions (
    id              bigserial PRIMARY KEY,
    -- the SHA-256 of the cookie's secret; the secret itself is never stored
    secret_sha256   bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    account         text NOT NULL REFERENCES console_accounts (name),
    -- what every form of the session carries (`_csrf`)
    form_token      text NOT NULL CHECK (length(form_token) >= 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the idle timeout counts from here
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    -- the absolute limit
    expires_at      timestamptz NOT NULL,
    -- logged out, or the account disabled or given a new password
    revoked_at      timestamptz
);

CREATE INDEX console_sessions_of_account ON console_sessions (account) WHERE revoked_at IS NULL;
