-- hancha: the counties' signatures on each installed agreement version, as this node verified
-- them when the version was applied.
--
-- Verification happens once, at apply time, against the trust anchors of that moment, and is
-- recorded here: a certificate renewed (or expired) later does not take a version out of force.
-- signed_by_all says whether every party's signature verified; a version without it (installed
-- while require_signatures was off, or before signatures existed) is never sent under nor
-- honoured while signatures are required.
ALTER TABLE agreements
    ADD COLUMN signed_by_all boolean NOT NULL DEFAULT false;

CREATE TABLE agreement_signatures (
    agreement_id     text NOT NULL,
    hash             text NOT NULL,
    signer_county    text NOT NULL CHECK (signer_county ~ '^[0-9]{6}$'),  -- as the signature states it
    cert_fingerprint text NOT NULL,         -- SHA-256 of the signer's certificate (DER), hex; '' if unreadable
    signed_at        timestamptz NOT NULL,  -- as signed
    verified_at      timestamptz NOT NULL,
    outcome          text NOT NULL,         -- 'verified', or why the signature was refused
    PRIMARY KEY (agreement_id, hash, signer_county, cert_fingerprint, signed_at),
    FOREIGN KEY (agreement_id, hash) REFERENCES agreements (agreement_id, hash)
);
