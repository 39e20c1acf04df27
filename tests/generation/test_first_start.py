"""A fresh start on a GGUF reads what llama.cpp needs from the file itself: the tokenizer (before any conversion to
safetensors) and the metadata (without mapping the vocabulary). Both must equal what the slower paths give."""

from __future__ import annotations

from pathlib import Path

from workbench.config import Settings
from workbench.generation.loading import TOKENIZER_STAMP, load_tokenizer
from workbench.generation.modelinfo import _gguf_fields, _wanted
from workbench.registry import embedded_base

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Héllo, wörld! 你好 🙂"},
        {"role": "assistant", "content": "Hi.\n\nHow can I help?"},
        {"role": "user", "content": "  spaces  and\ttabs "},
    ],
]


def test_the_tokenizer_read_from_the_gguf_is_the_converted_one(wb_settings, tmp_path):
    base = embedded_base()
    fresh = Settings(home=tmp_path)  # no conversion in this store
    from_file = load_tokenizer(base, fresh)
    assert not (fresh.base_dir / base.cache_name).exists()  # nothing was converted for it
    saved = fresh.base_dir / f"{base.cache_name}.tokenizer"
    assert (saved / TOKENIZER_STAMP).is_file()  # the next start reads this folder instead of the GGUF
    from_cache = load_tokenizer(base, fresh)
    converted = load_tokenizer(base, wb_settings)
    for tokenizer in (from_file, from_cache):
        _assert_same(tokenizer, converted)
    (saved / TOKENIZER_STAMP).write_text('{"file": "another.gguf"}')  # the GGUF changed since: read it again
    _assert_same(load_tokenizer(base, fresh), converted)
    assert "another" not in (saved / TOKENIZER_STAMP).read_text()  # and saved again


def _assert_same(tokenizer, converted) -> None:
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (converted.bos_token_id, converted.eos_token_id)
    assert tokenizer.chat_template == converted.chat_template
    assert tokenizer.add_bos_token == converted.add_bos_token
    for messages in CONVERSATIONS:
        ids = [
            t.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
            for t in (tokenizer, converted)
        ]
        assert ids[0] == ids[1]
        assert tokenizer(messages[-1]["content"])["input_ids"] == converted(messages[-1]["content"])["input_ids"]


def test_the_gguf_metadata_reader_agrees_with_the_gguf_package():
    from gguf import GGUFReader

    path = embedded_base().source
    reference = {key: field.contents() for key, field in GGUFReader(path).fields.items() if _wanted(key)}
    assert _gguf_fields(path, Path(path).stat().st_mtime_ns) == reference
    assert reference["llama.context_length"] == 8192 and reference["tokenizer.ggml.add_bos_token"] is False
