"""One declaration per hyperparameter: JobConfig's fields drive the `train` flags, the job's command line, the
Fine-tune tab's components and the "train" endpoint's parameters, by name. The demo is built, not launched.

Run: .venv/bin/python -m pytest -q tests/ui/test_finetune_form.py
"""

from __future__ import annotations

import argparse

import pytest

from workbench.cli import build_parser
from workbench.cli import train as train_cli
from workbench.cli.train import job_config
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import EMBEDDED_NAME
from workbench.training import filters, hparams
from workbench.training.config import DEMO_SETTINGS, JobConfig
from workbench.training.filters import PREFIX, FeedbackFilters
from workbench.training.jobs import train_command
from workbench.training.votes import VoteFilters
from workbench.ui.finetune_form import elem_id, start_value

FAMILY = "other-family"  # a second served family: only its file's name and time are read here


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from workbench.ui.demo import build_demo

    home = tmp_path_factory.mktemp("form")
    (home / f"{FAMILY}.gguf").write_bytes(b"GGUF")
    return build_demo(Settings(home=home, model=f"{EMBEDDED_NAME},{home / f'{FAMILY}.gguf'}"))


def test_each_hyperparameter_is_a_flag_a_component_and_an_endpoint_parameter(demo):
    declared = hparams.declared(JobConfig)
    train = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    flags = {o: a for a in train._actions for o in a.option_strings}
    components = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    endpoint = {p["parameter_name"]: p for p in demo.get_api_info()["named_endpoints"]["/train"]["parameters"]}
    assert {f.name for f, _ in declared} >= set(DEMO_SETTINGS)
    for f, spec in declared:
        action = flags[hparams.flag(f.name)]  # the CLI
        assert action.dest == f.name and action.default is None and spec.help in action.help
        if not spec.form:  # CLI only, and said why
            assert spec.why_not and elem_id(f.name) not in components and f.name not in endpoint
            continue
        component = components[elem_id(f.name)]  # the form
        assert component.label == spec.label and component.info == spec.help
        assert list(getattr(component, "choices", None) or []) in ([], [(c, c) for c in spec.choices])
        param = endpoint[f.name]  # the endpoint: by name, defaulting to the form's starting value
        assert param["parameter_has_default"] and param["parameter_default"] == start_value(f) == component.value
        assert param["label"] == spec.label
    form_names = {f.name for f, spec in declared if spec.form}
    others = {"upload", "dataset", "val_upload", "run_name", "token", "from_votes", "base_model"}
    others |= {PREFIX + f.name for f in filters.declared(VoteFilters)}  # the store-feedback filters
    assert set(endpoint) == form_names | others  # nothing else, nothing by position


def test_the_base_model_is_a_served_family_checked_at_the_door_and_reaches_the_job(demo, tmp_path):
    from tests.test_registry import write_adapter
    from workbench.gate.sizes import OWNER
    from workbench.studio.arena_send import parent_of
    from workbench.training.jobs import RunStatus
    from workbench.ui.fields import field_of
    from workbench.ui.finetune import _progress_text
    from workbench.ui.finetune_actions import _config, run_family

    ctx = demo.workbench_context
    chooser = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "ft-base-model")
    assert chooser.choices == [(EMBEDDED_NAME, EMBEDDED_NAME), (FAMILY, FAMILY)] and chooser.value == EMBEDDED_NAME
    endpoint = {p["parameter_name"]: p for p in demo.get_api_info()["named_endpoints"]["/train"]["parameters"]}
    assert endpoint["base_model"]["parameter_default"] == EMBEDDED_NAME
    with pytest.raises(WorkbenchError) as refused:
        field_of(chooser, OWNER).check("gemma")  # the gate: only the served families' names
    assert str(refused.value) == "Base model must be one of its choices, not 'gemma'."

    data = str(tmp_path / "d.jsonl")
    assert _config(ctx, "r", data, None, {"base_model": EMBEDDED_NAME}).base_model is None  # the main: as before
    config = _config(ctx, "r", data, None, {"base_model": FAMILY, "max_steps": 3})
    assert config.base_model == str(ctx.settings.home / f"{FAMILY}.gguf")  # what names it alone, for the job
    argv = train_command(config)[3:]
    assert argv[argv.index("--model") + 1] == config.base_model
    assert job_config(build_parser().parse_args(argv), settings=None) == config
    with pytest.raises(WorkbenchError) as refused:
        _config(ctx, "r", data, None, {"base_model": "gemma"})  # a direct call, past the gate's own check
    assert str(refused.value) == f"'gemma' is not a base model served here: train one of {EMBEDDED_NAME}, {FAMILY}."

    job = ctx.settings.adapters_dir / "r" / ".trainer" / "job.json"  # the job records the family it trains
    job.parent.mkdir(parents=True)
    job.write_text(f'{{"base_model": "{FAMILY}"}}')
    family = run_family(ctx, "r")
    assert family is not None and family.name == FAMILY
    status = RunStatus(run="r", status="finished", checkpoints=["r/checkpoint-3"], adapter="r")
    shown = _progress_text(status, family)
    assert f"`{FAMILY}/r/checkpoint-3`" in shown and f"`{FAMILY}/r`." in shown  # as the Chat tab's selector names them
    write_adapter(ctx.settings.adapters_dir / "r" / "checkpoint-3", base_name=FAMILY)
    assert parent_of(ctx.settings, f"{FAMILY}/r/checkpoint-3") == FAMILY  # what "Send to the Arena" pairs it with


def test_each_store_filter_is_a_flag_a_component_and_an_endpoint_parameter(demo):
    train = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    flags = {o: a for a in train._actions for o in a.option_strings}
    components = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    endpoint = {p["parameter_name"]: p for p in demo.get_api_info()["named_endpoints"]["/train"]["parameters"]}
    for f in filters.declared(VoteFilters):
        meta = f.metadata["filter"]
        assert flags[filters.flag(f)].dest == f.name and meta["help"] in flags[filters.flag(f)].help
        component = components["ft-" + (PREFIX + f.name).replace("_", "-")]
        assert component.label.lower() == meta["help"].lower() and PREFIX + f.name in endpoint
        if meta["choices"]:
            assert [c for c, _ in component.choices] == list(meta["choices"]) and component.value == f.default


def test_the_tabs_filters_reach_the_job(tmp_path):
    """Every filter the tab (or the CLI) sets is on the job's command line and reads back the same (issue 29)."""
    chosen = VoteFilters(
        checkpoints=("a", "b"),
        raters=("alice",),
        rater_kind="all",
        origin="chat",
        since="2026-12-01",
        until="2026-12-07",
        same_settings=True,
        min_agreement=0.75,
        source="edit",
        unreviewed=True,
    )
    config = JobConfig(run="r", data=str(tmp_path / "p.jsonl"), method="dpo", votes={"filters": chosen.to_dict()})
    argv = train_command(config)[3:]
    assert argv[argv.index("--quiet") + 1] == "--from-votes" and "--data" not in argv
    assert train_cli._filters(build_parser().parse_args(argv), VoteFilters) == chosen
    likes = FeedbackFilters(rater_kind="judges", origin="battle", until="2026-12-07")
    config = JobConfig(run="r", data=str(tmp_path / "l.jsonl"), method="kto", likes={"filters": likes.to_dict()})
    argv = train_command(config)[3:]
    assert "--from-likes" in argv and "--vote-min-agreement" not in argv
    assert train_cli._filters(build_parser().parse_args(argv), FeedbackFilters) == likes


def test_the_job_command_line_gives_back_the_same_job(tmp_path):
    config = JobConfig(
        run="r",
        data=str(tmp_path / "d.jsonl"),
        method="dpo",
        init_adapter="sft/checkpoint-2",
        target_modules=("q_proj", "v_proj"),
        gradient_checkpointing=False,  # off differs from the default: the command line must say so
        learning_rate=3e-4,
        packing="off",
        max_steps=7,
        eval_suites=("s",),
    )
    argv = train_command(config)[3:]  # after `python -m workbench`
    again = job_config(build_parser().parse_args(argv), settings=None)
    assert again == config


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"max_steps": 2.5}, "Max steps must be a whole number, not 2.5."),
        ({"seed": -1}, "Seed must be at least 0, not -1."),
        ({"val_fraction": 0.6}, "Validation fraction must be at most 0.5, not 0.6."),
        ({"beta": 0}, "Beta must be more than 0, not 0."),
        ({"learning_rate": None}, "Learning rate must be a number, not None."),
        ({"scheduler": "step"}, "Scheduler must be one of linear, cosine, constant, not 'step'."),
    ],
)
def test_the_declared_bounds_answer_with_the_label(values, sentence):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError) as refused:
        JobConfig(run="r", data="d.jsonl", **values)
    assert str(refused.value) == sentence
    assert JobConfig(run="r", data="d.jsonl", max_steps=4.0).max_steps == 4  # a form's 4.0 is the number 4
