"""Evaluation: measure checkpoints on the suites in `evals/` and shape the results for charts.

Modules: `metrics/` (perplexity, BLEU/chrF with sacrebleu, diversity: pure functions), `suites` (the suite
specs in `evals/`), `runner` (run suites against checkpoints through the ChatEngine), `results` (EvalResult
and how it goes into the store), `views` (stored results shaped for the Metrics page), `fingerprints`
(SHA-256 of models and data files, so a number says exactly what it measured), `paired` (two checkpoints' results
compared, with a paired bootstrap interval over the items).

    from workbench.evaluation.runner import run_suites
    from workbench.evaluation.results import save_results
"""
