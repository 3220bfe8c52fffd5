-- Coffer schema version 5 (expiry you cannot miss): rotation reminders on secret versions
-- (Infisical's secretReminderRepeatDays / secretReminderNote; 0 and '' mean none), and indexes for
-- the expiry scans: the secrets and client secrets that expire, and the versions with a reminder,
-- are found without reading every row. A reminder falls due reminder_repeat_days after the version
-- was written (created_at), i.e. when a secret was not changed within its interval.
ALTER TABLE secret_versions ADD COLUMN reminder_repeat_days INTEGER NOT NULL DEFAULT 0
    CHECK (reminder_repeat_days >= 0);
ALTER TABLE secret_versions ADD COLUMN reminder_note TEXT NOT NULL DEFAULT '';
CREATE INDEX secret_versions_expires ON secret_versions (expires_at) WHERE expires_at > 0;
CREATE INDEX secret_versions_reminder ON secret_versions (reminder_repeat_days)
    WHERE reminder_repeat_days > 0;
CREATE INDEX identity_client_secrets_expires ON identity_client_secrets (expires_at)
    WHERE expires_at > 0 AND revoked = 0;
