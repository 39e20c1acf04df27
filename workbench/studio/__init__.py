"""The studio: the logic behind the dashboard's pages and the Arena, with no UI code.

Modules: `compare` (checkpoints side by side on one prompt or a prompt set, stored and re-shown; Arena pairs),
`lab` (generation-settings sweeps with diversity, next-token probabilities), `promptsets` (the shipped
prompt sets, loaded into the store).

    from workbench.studio import compare, lab
"""
