"""The lateness board's figures per unit, as the page tests expect them (one list, read by
test_pages and test_demo_board)."""

BOARD_FIGURES = (
    "received",
    "carried_over",
    "in_progress_past_due",
    "paused",
    "done_early",
    "done_on_time",
    "done_late",
)
