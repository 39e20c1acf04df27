"""Generation: the one way Workbench turns messages into text.

Modules: `settings` (GenerationSettings, ReplyStats, message checks; torch-free), `engine` (ChatEngine:
messages + settings -> streamed text + stats, adapters per request), `streaming` (the Reply a caller
iterates: stop strings held back, timing, cancel), `loading` (GGUF -> cached safetensors, folders, hub ids;
device, dtype, adapters).

    from workbench.generation.engine import ChatEngine
    from workbench.generation.settings import GenerationSettings
"""
