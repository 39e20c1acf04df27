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

# No page icons: a ":material/...:" icon makes the browser fetch the favicon from Google, and emoji need a font
# that headless machines often lack.
PAGES = (
    ("pages/compare.py", "Compare"),
    ("pages/metrics.py", "Metrics"),
    ("pages/rate.py", "Rate"),
    ("pages/leaderboard.py", "Leaderboard"),
    ("pages/lab.py", "Lab"),
)


def main() -> None:
    """Set up the page and run the page the visitor chose."""
    st.set_page_config(page_title="Workbench dashboard", layout="wide")
    pages = [st.Page(path, title=title, default=i == 0) for i, (path, title) in enumerate(PAGES)]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
