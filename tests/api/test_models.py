"""`GET /v1/models` answers OpenAI's model objects, the fields clients read (the `openai` client's Model, Open
WebUI's model list): id, object, created (when the checkpoint was made) and owned_by. In process, nothing loaded."""

import os
from pathlib import Path

from starlette.testclient import TestClient

from tests.test_registry import write_adapter
from workbench.cli.serve import build_app
from workbench.config import Settings
from workbench.registry import resolve_base

MADE = 1_700_000_000  # the adapter's weights were written then


def test_each_model_is_an_openai_model_object_with_the_time_its_checkpoint_was_made(tmp_path):
    settings = Settings(home=tmp_path)
    weights = write_adapter(settings.adapters_dir / "my-run") / "adapter_model.safetensors"
    os.utime(weights, (MADE, MADE))
    app, _loading = build_app(settings)  # the model is never loaded
    c = TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000))

    listing = c.get("/v1/models").json()
    assert listing["object"] == "list"
    models = {m["id"]: m for m in listing["data"]}
    base_file = Path(resolve_base(settings).source)
    assert models["my-run"] == {"id": "my-run", "object": "model", "created": MADE, "owned_by": "workbench"}
    assert models["base"]["created"] == int(base_file.stat().st_mtime) > 0
    assert models[resolve_base(settings).name] == {**models["base"], "id": resolve_base(settings).name}
    assert c.get("/v1/models/my-run").json() == models["my-run"]


def test_another_familys_models_carry_the_time_their_files_were_written(tmp_path):
    family = tmp_path / "gemma-file.gguf"  # listing reads only the file's time: nothing loads it
    family.write_bytes(b"GGUF")
    os.utime(family, (MADE - 7, MADE - 7))
    settings = Settings(home=tmp_path, model=f"{resolve_base(Settings()).name},{family}")
    os.utime(
        write_adapter(settings.adapters_dir / "g-run", base_name="gemma-file") / "adapter_model.safetensors",
        (MADE, MADE),
    )
    app, _loading = build_app(settings)
    c = TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000))

    created = {m["id"]: m["created"] for m in c.get("/v1/models").json()["data"]}
    assert created["gemma-file"] == MADE - 7 and created["gemma-file/g-run"] == MADE
