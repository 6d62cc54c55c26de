"""From runs to answers: the runs table, tuned selection, significance, leaderboard and report."""
