"""Workbench: a workbench for chat language models.

Talk to a model (`workbench.engine`), fine-tune it with LoRA (`workbench.finetune`), measure its
checkpoints (`workbench.evals`), and collect human ratings (`workbench.store`, `workbench.ratings`).
Importing the package does no work: nothing is loaded until a function asks for it.
"""

__version__ = "0.1.0"
