"""Ratings: from human votes to a leaderboard. Pure numpy/pandas, no model, no database.

Modules: `scoring` (Bradley-Terry with bootstrap intervals, online Elo, win rates, position bias, Likert
summaries; FastChat battle files), `agreement` (Cohen's kappa, Krippendorff's alpha between raters),
`leaderboard` (the Leaderboard page's filters and standings over the store's votes), `versus` (one checkpoint
against another: the Arena's difference, like rates, judges' win shares) and `verdict` (the rule that turns them
into better, worse or not yet known).

    from workbench.ratings import scoring
    board = scoring.leaderboard(store.battles(), bootstrap=1000)
"""
