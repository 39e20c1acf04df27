"""Training: LoRA fine-tuning (SFT, DPO or KTO) from validated data, in its own process, with checkpoints the chat uses.

    from workbench.training import JobConfig, run_job
    summary = run_job(JobConfig(run="identity", data="data/fastchat_identity/train.jsonl", max_steps=40), settings)

A run's folder under the adapters folder (`models/adapters/` by default):

    <run>/checkpoint-<step>/   a PEFT adapter (adapter_config.json, adapter_model.safetensors) + workbench.json
    <run>/                     the final adapter (best validation loss, else the last checkpoint), once the run ends
    <run>/train_log.jsonl      events as the run goes: losses, learning rate, tokens/s, checkpoints, end
    <run>/.trainer/            job.json and the Trainer's resumable checkpoints (optimizer, scheduler, RNG)

Modules: `data` (dataset files -> validated conversations with line-numbered problems), `config` (JobConfig,
RunPaths), `prepare` (tokenizer, validation, split), `tokenize` (assistant-only labels), `trainer` (run_job:
TRL's SFTTrainer), `callbacks`, `hooks` (suites at each save), `checkpoints` (atomic publish, resume point),
`runlog` (the JSONL log), `jobs` (a run as a subprocess: start, status, cancel, resume), `losses` (loss
curves for charts), `preferences` (preference files -> templated prompt/chosen/rejected pairs), `votes` (the
store's votes -> a preference file), `dpo` (TRL's DPOTrainer for `method="dpo"`), `unpaired` (liked/disliked
reply files -> templated prompt/completion/label replies), `likes` (the store's likes and dislikes -> such a file),
`kto` (TRL's KTOTrainer for `method="kto"`), `tracking` (--report-to), `export` (merged or plain PEFT export),
`chunked_head` (the loss over chunks of labelled tokens, never the full logits), `memory` (a run's memory estimate
before it starts, and the refusal of one that cannot fit). Only `trainer`, `callbacks` and `chunked_head` import
torch/transformers at import.
"""

from workbench.training.config import JobConfig, RunPaths

__all__ = ["JobConfig", "RunPaths", "run_job"]


def __getattr__(name: str):
    # run_job pulls in transformers; importing the package for JobConfig must stay light.
    if name == "run_job":
        from workbench.training.trainer import run_job

        return run_job
    raise AttributeError(name)
