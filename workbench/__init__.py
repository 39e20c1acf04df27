"""Workbench: a workbench for chat language models.

The packages are the product's capabilities: talk to a model (`generation`), fine-tune it with LoRA
(`training`), measure its checkpoints (`evaluation`), keep generations, votes and results (`store`) and rank
checkpoints from human votes (`ratings`); `studio` is the logic behind the dashboard's pages; `ui` and `cli`
are the leaves. `config`, `errors`, `registry` and `jsonl` are what everything shares; `bench` is the benchmark.
Importing the package does no work: nothing is loaded until a function asks for it.
"""

__version__ = "0.1.0"
