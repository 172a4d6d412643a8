-- hancha: API tokens of the county's systems calling the HTTP/JSON operator API.
--
-- Only the SHA-256 of a token is kept: the token itself is shown once when made and never
-- stored, so a copy of the database does not let anyone call the API. A token acts within the
-- whole county (`township` NULL) or one township office's area, like an operator certificate.
-- Revoked tokens stay, so that the audit records naming them keep their meaning.
CREATE TABLE api_tokens (
    -- the name audit records give the principal: never something like an ID number (as 0003)
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$' AND name !~ '[0-9]{14}'),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    township      text CHECK (township ~ '^[0-9]{9}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
