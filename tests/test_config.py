"""Settings: environment parsing, defaults, validation and the admin-token check."""

import pytest

from workbench.config import AUTO_SLOTS_MAX, AUTO_SLOTS_MIN, Settings, auto_slots, usable_cores
from workbench.errors import WorkbenchError


def test_defaults_derive_paths_from_home(tmp_path):
    s = Settings(home=tmp_path)
    assert s.models_dir == tmp_path / "models"
    assert s.adapters_dir == tmp_path / "models" / "adapters"
    assert s.base_dir == tmp_path / "models" / "base"
    assert s.db_url == f"sqlite:///{tmp_path / 'var' / 'workbench.db'}"
    assert s.model is None and s.trust_remote_code is False


def test_from_env_reads_variables_only_when_called(tmp_path):
    env = {
        "WORKBENCH_HOME": str(tmp_path),
        "WORKBENCH_MODEL": "some/model",
        "WORKBENCH_DEVICE": "cpu",
        "WORKBENCH_DTYPE": "bfloat16",
        "WORKBENCH_TRUST_REMOTE_CODE": "1",
        "WORKBENCH_DB_URL": "postgresql+psycopg://u@h/db",
    }
    s = Settings.from_env(env)
    assert (s.home, s.model, s.device, s.dtype) == (tmp_path, "some/model", "cpu", "bfloat16")
    assert s.trust_remote_code is True and s.db_url.startswith("postgresql+psycopg")
    assert Settings.from_env(env, model="other").model == "other"  # keyword arguments win


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WORKBENCH_DEVICE": "tpu"}, r"Device \(WORKBENCH_DEVICE\) must be one of auto, cpu, cuda, mps \(or cuda:N\)"),
        ({"WORKBENCH_DTYPE": "int4"}, r"Dtype \(WORKBENCH_DTYPE\) must be one of"),
        ({"WORKBENCH_TRUST_REMOTE_CODE": "maybe"}, r"Trust remote code \(WORKBENCH_TRUST_REMOTE_CODE\) must be 1 or 0"),
        ({"WORKBENCH_BACKEND": "vllm"}, r"Backend \(WORKBENCH_BACKEND\) must be one of auto, transformers, llamacpp"),
        ({"WORKBENCH_SLOTS": "many"}, r"Slots \(WORKBENCH_SLOTS\) must be a whole number"),
        ({"WORKBENCH_SLOTS": "-1"}, "must be between 0 and 64"),
        ({"WORKBENCH_CONTEXT": "-5"}, r"Context \(WORKBENCH_CONTEXT\) must be between 0"),
    ],
)
def test_bad_settings_get_one_sentence(env, needle):
    with pytest.raises(WorkbenchError, match=needle):
        Settings.from_env(env)


def test_admin_token_is_required_only_when_set(tmp_path):
    Settings(home=tmp_path).check_admin(None)  # no token configured: open
    guarded = Settings(home=tmp_path, admin_token="s3cret")
    guarded.check_admin("s3cret")
    for wrong in (None, "", "S3CRET"):
        with pytest.raises(WorkbenchError, match="admin token"):
            guarded.check_admin(wrong)
    assert "s3cret" not in repr(guarded)


def test_settings_travel_to_a_child_process_without_the_admin_token(tmp_path):
    s = Settings(home=tmp_path, model="m", backend="llamacpp", slots=2, context=1024, admin_token="s3cret")
    env = s.to_env()
    assert "WORKBENCH_ADMIN_TOKEN" not in env and "s3cret" not in str(env)
    assert Settings.from_env(env, admin_token="s3cret") == s
    assert (Settings(home=tmp_path).backend, Settings(home=tmp_path).slots) == ("auto", auto_slots())


def test_slots_default_to_a_count_chosen_from_the_cores(tmp_path):
    # WORKBENCH_SLOTS=0 (the default) means auto: a few slots per usable core, within bounds
    assert Settings(home=tmp_path).slots == Settings.from_env({"WORKBENCH_SLOTS": "0"}).slots == auto_slots()
    assert auto_slots() == auto_slots(usable_cores()) and 1 <= usable_cores() <= (__import__("os").cpu_count() or 1)
    assert (auto_slots(1), auto_slots(2), auto_slots(3)) == (4, 8, 12)  # 4 per core: measured on 2 cores
    assert auto_slots(1024) == AUTO_SLOTS_MAX and auto_slots(1) >= AUTO_SLOTS_MIN
    assert Settings.from_env({"WORKBENCH_SLOTS": "3"}).slots == 3  # a number given is kept
