-- Coffer schema version 7: JWT auth's clock-skew leeway, in seconds, applied to exp, nbf
-- and iat (default 60, as before it was configurable; at most an hour).
ALTER TABLE identity_jwt_auths ADD COLUMN clock_skew_leeway INTEGER NOT NULL DEFAULT 60
    CHECK (clock_skew_leeway >= 0 AND clock_skew_leeway <= 3600);
