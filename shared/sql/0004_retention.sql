-- Retention (shared/retention.py): published outbox rows and processed inbox rows are
-- deleted after a configurable period; these indexes find them without a scan.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX inbox_applied ON inbox (applied_at);
