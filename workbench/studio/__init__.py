"""The studio: the logic behind the dashboard's pages and the Arena, with no UI code.

Modules: `compare` (checkpoints side by side on one prompt or a prompt set, stored and re-shown; Arena pairs),
`lab` (generation-settings sweeps with diversity, next-token probabilities), `promptsets` (the shipped
prompt sets, loaded into the store), `lineage` (a checkpoint's parent and its verdict against it), `promote` (the
Space's default checkpoint) and `modelcard` (the promoted adapter's README.md).

    from workbench.studio import compare, lab
"""
