-- The apology's PDF is laid out and signed after the letter is issued, by the notifier's
-- rendering worker (rendering.py), so that the overdue alert and the letter's issue do not wait
-- for it. `pdf_pending`: the letter is issued, its signed PDF not yet stored; delivery waits
-- for it. A failed render is retried after `render_next_at`; a crash mid-render rolls back the
-- claim, and the row is rendered again.
ALTER TABLE apologies
    ADD COLUMN pdf_pending     boolean     NOT NULL DEFAULT false,
    ADD COLUMN render_attempts integer     NOT NULL DEFAULT 0,
    ADD COLUMN render_next_at  timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN render_error    text;
CREATE INDEX apologies_to_render ON apologies (render_next_at, issued_at) WHERE pdf_pending;
