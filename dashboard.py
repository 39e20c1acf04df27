"""Workbench's Streamlit dashboard: compare checkpoints, read their metrics, rate outputs blind, see the leaderboard.

Run it with `make dashboard` or `streamlit run dashboard.py` (settings from the WORKBENCH_* variables, see
workbench/config.py; the store is WORKBENCH_DB_URL, SQLite under var/ by default). This file only lays out the
navigation; each page is one file in pages/ (widgets and wiring), and the work is done in workbench/.

    Compare      one prompt (typed or from a prompt set), 2 to 4 checkpoints side by side, stored and re-shown
    Metrics      perplexity, BLEU and chrF per checkpoint and over training steps, loss curves, per-example outputs
    Rate         blind pairwise votes and 1-5 scores, one item at a time
    Leaderboard  Bradley-Terry with intervals, win rates, Elo, Likert means, agreement, exports
    Lab          a temperature x top-p sweep with diversity, and next-token probabilities
"""

import streamlit as st

PAGES = (
    ("pages/compare.py", "Compare", ":material/view_column:"),
    ("pages/metrics.py", "Metrics", ":material/monitoring:"),
    ("pages/rate.py", "Rate", ":material/thumbs_up_down:"),
    ("pages/leaderboard.py", "Leaderboard", ":material/leaderboard:"),
    ("pages/lab.py", "Lab", ":material/science:"),
)


def main() -> None:
    """Set up the page and run the page the visitor chose."""
    st.set_page_config(page_title="Workbench dashboard", page_icon=":material/dashboard:", layout="wide")
    pages = [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(PAGES)]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
