"""From runs to answers: the runs table, tuned selection, significance, the leaderboard (configurations,
columns, published numbers, rendering, diff, a sweep's board) and the report (figures, verdict, page)."""
