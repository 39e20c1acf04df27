"""What base models and LoRA adapters exist on disk, and whether each one is usable (torch-free, so the dashboard
and the CLI list models fast). Two modules, imported from here by their public names:

- `workbench.registry.bases`: base models (the embedded one, registry.yaml's entries, WORKBENCH_MODEL), the served
  families and the main model;
- `workbench.registry.adapters`: PEFT adapter folders under `models/adapters/`, each checked without loading it.

registry.yaml:
    default: qwen-0.5b                        # optional; else the embedded model
    models:
      - name: qwen-0.5b
        source: Qwen/Qwen2.5-0.5B-Instruct    # hub id, local folder, or a .gguf file
        trust_remote_code: false              # optional
        serve: true                           # optional: served beside the main model (docs/models.md)
      - name: gpt4o-mini                      # a remote model: see workbench.remote
        backend: openai
        base_url: https://api.openai.com/v1
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
"""

from workbench.registry.adapters import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CHAT_TEMPLATE_FILE,
    RUN_META,
    Adapter,
    adapters_signature,
    find_adapter,
    inspect_adapter,
    list_adapters,
    remote_adapters,
    same_base,
)
from workbench.registry.bases import (
    BASE_NAME,
    EMBEDDED_BYTES,
    EMBEDDED_FILE,
    EMBEDDED_HUB_FILE,
    EMBEDDED_NAME,
    EMBEDDED_PACKAGE,
    EMBEDDED_REPO,
    EMBEDDED_REVISION,
    EMBEDDED_SHA256,
    BaseModel,
    HubFile,
    Kind,
    base_from_source,
    embedded_base,
    hub_cache_path,
    list_bases,
    model_list,
    resolve_base,
    served_bases,
    standalone,
)

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "BASE_NAME",
    "CHAT_TEMPLATE_FILE",
    "EMBEDDED_BYTES",
    "EMBEDDED_FILE",
    "EMBEDDED_HUB_FILE",
    "EMBEDDED_NAME",
    "EMBEDDED_PACKAGE",
    "EMBEDDED_REPO",
    "EMBEDDED_REVISION",
    "EMBEDDED_SHA256",
    "RUN_META",
    "Adapter",
    "BaseModel",
    "HubFile",
    "Kind",
    "adapters_signature",
    "base_from_source",
    "embedded_base",
    "find_adapter",
    "hub_cache_path",
    "inspect_adapter",
    "list_adapters",
    "list_bases",
    "model_list",
    "remote_adapters",
    "resolve_base",
    "same_base",
    "served_bases",
    "standalone",
]
