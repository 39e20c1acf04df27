"""The OpenAI-compatible API served by `workbench serve` (one server for the module), driven by real clients: the
pinned `openai` client, sync and streaming; Workbench's own remote backend pointed back at it; lm-evaluation-harness
through `local-completions`; and raw HTTP for what clients should never send.

The server runs the embedded model on llama.cpp with two slots and one adapter trained for it in two checkpoints
(`api-run`, `api-run/checkpoint-2`), with an API key set (so a wrong key is refused; this machine is the owner).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import pytest

from tests.fixtures.models import make_lora_adapter
from tests.fixtures.servers import ROOT, free_port, server_process
from workbench.api.routes import SHUTDOWN_GRACE_S
from workbench.registry import EMBEDDED_NAME

pytestmark = pytest.mark.slow

KEY = "wbk-test-0123456789abcdef"
FRANCE = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def served(wb_env, wb_settings, embedded_dir, tmp_path_factory):
    """`workbench serve` on a free port with the adapter's final and one checkpoint on disk."""
    run = wb_settings.adapters_dir / "api-run"
    make_lora_adapter(embedded_dir, run / "checkpoint-2", EMBEDDED_NAME, seed=7, scale=0.3)
    make_lora_adapter(embedded_dir, run, EMBEDDED_NAME, seed=8, scale=0.3)
    port = free_port()
    db = tmp_path_factory.mktemp("api-store") / "store.db"
    env = {**wb_env, "WORKBENCH_API_KEYS": KEY, "WORKBENCH_SLOTS": "2", "WORKBENCH_DB_URL": f"sqlite:///{db}"}
    cmd = [sys.executable, "-m", "workbench", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with server_process(cmd, f"{url}/status", env, "workbench_serve.log") as proc:
        deadline = time.monotonic() + 300
        while not status(url)["ready"]:
            assert time.monotonic() < deadline and proc.poll() is None, "the model did not load"
            time.sleep(0.5)
        server = SimpleNamespace(url=url, port=port, db=f"sqlite:///{db}")
        yield server
        if proc.poll() is None:  # stopped with a reply in flight, it cancels the reply after the grace period
            with _post_raw(server, "/v1/completions", LEAVING["whole completion"][1]):
                _wait_busy(server)
                proc.terminate()
                try:
                    proc.wait(timeout=SHUTDOWN_GRACE_S + 15)  # the reply alone would take over a minute
                except subprocess.TimeoutExpired:
                    pytest.fail("workbench serve, stopped, waited for the reply in flight to end")
    shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def client(served):
    from openai import OpenAI

    with OpenAI(base_url=f"{served.url}/v1", api_key=KEY, max_retries=0, timeout=300) as c:
        yield c


def status(url: str) -> dict:
    with _NO_PROXY.open(f"{url}/status", timeout=10) as response:
        return json.load(response)


def raw(served, body: bytes | str, path="/v1/chat/completions", headers=None) -> tuple[int, dict]:
    """POST `body` as is; (status, JSON answer)."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"{served.url}{path}", data=data, method="POST")
    for name, value in {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {KEY}",
        **(headers or {}),
    }.items():
        request.add_header(name, value)
    try:
        with _NO_PROXY.open(request, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_models_list_the_base_and_each_adapter_by_name(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[:2] == [EMBEDDED_NAME, "base"]
    assert {"api-run", "api-run/checkpoint-2"} <= set(ids)
    assert client.models.retrieve("api-run/checkpoint-2").id == "api-run/checkpoint-2"


def test_chat_sync_and_streamed_give_the_same_greedy_reply(client):
    settings = {"temperature": 0, "max_tokens": 12, "seed": 1}
    reply = client.chat.completions.create(model=EMBEDDED_NAME, messages=FRANCE, **settings)
    text = reply.choices[0].message.content
    assert "Paris" in text and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 5
    chunks = list(
        client.chat.completions.create(
            model="base", messages=FRANCE, stream=True, stream_options={"include_usage": True}, **settings
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


def test_an_adapter_is_chosen_by_model_name(client):
    ask = {"messages": FRANCE, "temperature": 0, "max_tokens": 8, "seed": 1, "logprobs": True}
    replies = {m: client.chat.completions.create(model=m, **ask) for m in ("base", "api-run", "api-run/checkpoint-2")}
    assert replies["api-run"].model_extra["workbench"]["checkpoint"] == "api-run"
    # Each adapter changes the model's probabilities (the short greedy answer itself may stay the same).
    first = {m: round(r.choices[0].logprobs.content[0].logprob, 4) for m, r in replies.items()}
    assert len(set(first.values())) == 3, first
    # The adapter's strength: 0 is the base model, a base model id ignores it (as the chat does)
    for model, strength, like in (("api-run", 0, "base"), ("api-run", 0.5, None), ("base", 0.5, "base")):
        scaled = client.chat.completions.create(model=model, extra_body={"adapter_strength": strength}, **ask)
        logprob = round(scaled.choices[0].logprobs.content[0].logprob, 4)
        assert logprob == first[like] if like else logprob not in first.values(), (model, strength)


def test_sampling_settings_logprobs_n_and_json(client):
    reply = client.chat.completions.create(
        model="base",
        messages=FRANCE,
        max_tokens=6,
        seed=5,
        n=2,
        logprobs=True,
        top_logprobs=3,
        extra_body={"top_k": 20, "min_p": 0.1, "repetition_penalty": 1.1},
    )
    assert [c.index for c in reply.choices] == [0, 1]
    tokens = reply.choices[0].logprobs.content
    assert 0 < len(tokens) <= 6 and all(len(t.top_logprobs) == 3 for t in tokens)
    assert all(t.logprob <= 0 for t in tokens)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    shaped = client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": "Name a city."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert isinstance(json.loads(shaped.choices[0].message.content)["city"], str)


def test_completions_echo_logprobs_agree_with_a_transformers_forward_pass(client, embedded_dir, wb_settings):
    """The prompt's own log-probabilities (max_tokens 0), with an adapter, against peft + transformers run here."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "The capital of France is Paris, and the capital of Italy is Rome."
    answer = client.completions.create(model="api-run", prompt=prompt, max_tokens=0, echo=True, logprobs=2)
    choice = answer.choices[0]
    assert choice.text == prompt and choice.logprobs.token_logprobs[0] is None
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    ids = tokenizer(prompt)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(embedded_dir, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(model, wb_settings.adapters_dir / "api-run").eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
    expected = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist()
    assert len(choice.logprobs.token_logprobs) == len(ids) == answer.usage.prompt_tokens
    assert choice.logprobs.token_logprobs[1:] == pytest.approx(expected, abs=2e-3)
    assert all(len(top) == 2 for top in choice.logprobs.top_logprobs[1:])
    # Token ids as a batch, and one generated token after the echo (what lm-eval sends).
    batch = client.completions.create(
        model="api-run", prompt=[ids, ids[:5]], max_tokens=1, echo=True, logprobs=1, temperature=0
    )
    assert [len(c.logprobs.tokens) for c in batch.choices] == [len(ids) + 1, 6]


def test_stored_generations_keep_checkpoint_and_settings(client, served):
    from workbench.store import Store

    reply = client.chat.completions.with_raw_response.create(
        model="api-run/checkpoint-2",
        messages=FRANCE,
        max_tokens=5,
        temperature=0.5,
        seed=11,
        extra_headers={"X-Workbench-Store": "1"},
    ).parse()
    (gid,) = reply.model_extra["workbench"]["generation_ids"]
    stored = Store(served.db).get_generation(gid)
    assert stored.checkpoint == "api-run/checkpoint-2" and stored.output == reply.choices[0].message.content
    assert stored.settings["temperature"] == 0.5 and stored.seed == 11


def test_bad_requests_get_one_sentence_in_openai_error_shape(served):
    cases = [
        ('{"model": "base", "messages": "hi"}', 400, "messages"),
        ('{"model": "base", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', 400, "temperature"),
        ('{"model": "base", "messages": [{"role": "user", "content": "x"}], "logit_bias": {}}', 400, "logit_bias"),
        ('{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
        ("{not json", 400, None),
        ("[" * 100_000 + "]" * 100_000, 400, None),
    ]
    for body, code, param in cases:
        got, answer = raw(served, body)
        error = answer["error"]
        assert got == code and error["param"] == param and set(error) == {"message", "type", "param", "code"}, body[:80]
        assert error["message"].endswith(".") and len(error["message"]) < 300
    got, answer = raw(served, '{"model": "base", "prompt": "x"}', "/v1/completions", {"Authorization": "Bearer wrong"})
    assert got == 401 and "wrong" not in json.dumps(answer) and answer["error"]["type"] == "authentication_error"
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 40000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
        sock.sendall(head.encode() + b'{"model": "base", "prompt": "' + b"a" * 65536)
        answer = b""
        while b'"code"' not in answer and (chunk := sock.recv(65536)):  # the head and the body may come apart
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and '"code":"too_large"' in answer.replace(" ", "")


def _post_raw(served, path: str, body: dict) -> socket.socket:
    """A socket that sent `body` to `path` (raw HTTP: the test decides when the client leaves)."""
    data = json.dumps(body)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n{data}"
    )
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=120)
    sock.sendall(request.encode())
    return sock


def _wait_busy(served) -> None:
    deadline = time.monotonic() + 60
    while not status(served.url)["busy_slots"]:
        assert time.monotonic() < deadline, "the request never took a slot"
        time.sleep(0.05)


# Replies that run over a minute here, so a slot freed within seconds of the client leaving was cancelled: greedy
# counting ran on to max_tokens whenever tried, and a string whose schema asks more characters cannot end sooner.
LONG = {"max_tokens": 3000, "temperature": 0}
ENDLESS = {"type": "json_schema", "json_schema": {"name": "long", "schema": {"type": "string", "minLength": 20000}}}
LEAVING = {
    "stream": ("/v1/completions", {"model": "base", "prompt": "1, 2, 3, 4, 5,", "stream": True, **LONG}),
    "whole completion": ("/v1/completions", {"model": "base", "prompt": "1, 2, 3, 4, 5,", **LONG}),
    "whole chat": (
        "/v1/chat/completions",
        {"model": "base", "messages": [{"role": "user", "content": "Hi"}], "response_format": ENDLESS, **LONG},
    ),
}


@pytest.mark.parametrize("case", LEAVING)
def test_a_client_that_leaves_frees_its_slot(served, case):
    path, body = LEAVING[case]
    with _post_raw(served, path, body) as sock:
        if body.get("stream"):
            received = b""
            while b"data: " not in received:
                received += sock.recv(4096)
        _wait_busy(served)
    deadline = time.monotonic() + 15
    while status(served.url)["busy_slots"]:
        assert time.monotonic() < deadline, "the slot stayed busy after the client left"
        time.sleep(0.1)


def test_workbench_remote_backend_round_trip(served, client, tmp_path, monkeypatch):
    """Workbench's own OpenAI-compatible backend, pointed at Workbench's API: the same greedy replies, an adapter's
    strength included."""
    from workbench.config import Settings
    from workbench.generation.engine import ChatEngine
    from workbench.generation.settings import GenerationSettings

    monkeypatch.setenv("WB_SELF_KEY", KEY)
    models = tmp_path / "models"
    models.mkdir()
    (models / "registry.yaml").write_text(
        "models:\n  - name: wb-self\n    backend: openai\n"
        f"    base_url: {served.url}/v1\n    model: base\n    api_key_env: WB_SELF_KEY\n"
        "    adapters: {api-run: api-run}\n"
        "    sampling: {top_k: top_k, min_p: min_p, repetition_penalty: repetition_penalty, "
        "adapter_strength: adapter_strength}\n"
    )
    engine = ChatEngine.load(Settings(home=tmp_path, models_dir=models), base_name="wb-self")
    settings = GenerationSettings(temperature=0, max_new_tokens=10, top_k=0, repetition_penalty=1.0)
    for adapter, model in ((None, "base"), ("api-run", "api-run")):
        text, stats = engine.generate(FRANCE, settings, adapter)
        direct = client.chat.completions.create(model=model, messages=FRANCE, temperature=0, max_tokens=10)
        assert text == direct.choices[0].message.content and stats.backend == "openai"
        assert not stats.details.get("not_applied")
    # the strength goes to a Workbench server as its own extra field
    text, stats = engine.generate(FRANCE, settings.replace(adapter_strength=0.5), "api-run")
    extra = {"adapter_strength": 0.5}
    direct = client.chat.completions.create(
        model="api-run", messages=FRANCE, temperature=0, max_tokens=10, extra_body=extra
    )
    assert text == direct.choices[0].message.content and stats.details["sent"]["extra_body"]["adapter_strength"] == 0.5
    engine.close()


def test_lm_eval_local_completions_loglikelihoods_match_transformers(served, embedded_dir, tmp_path):
    """lm-evaluation-harness runs a tiny local multiple-choice task offline through `local-completions`; each
    choice's loglikelihood equals the transformers reference's for the same tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [
        {"question": "What is the capital of France?", "choices": ["Paris", "Rome", "Berlin"], "answer": 0},
        {"question": "How many legs does a cat have?", "choices": ["two", "four", "six"], "answer": 1},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "wb_tiny_mc.yaml").write_text(
        "task: wb_tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n"
    )
    out = tmp_path / "out"
    model_args = (
        f"model=base,base_url={served.url}/v1/completions,tokenizer={embedded_dir},"
        "tokenizer_backend=huggingface,tokenized_requests=True,num_concurrent=1,max_retries=1"
    )
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", model_args]
    cmd += ["--tasks", "wb_tiny_mc", "--include_path", str(tmp_path), "--output_path", str(out), "--log_samples"]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**__import__("os").environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (samples,) = list(out.rglob("samples_wb_tiny_mc_*.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_dir, torch_dtype=torch.float32).eval()
    checked = 0
    for line in samples.read_text().splitlines():
        sample = json.loads(line)
        args = sample["arguments"]
        pairs = [(a["arg_0"], a["arg_1"]) for a in args.values()] if isinstance(args, dict) else map(tuple, args)
        for (context, continuation), response in zip(pairs, sample["resps"], strict=True):
            whole = tokenizer(context + continuation)["input_ids"]
            start = len(tokenizer(context)["input_ids"])
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0, :-1].float(), -1)
            expected = sum(logp[i - 1, whole[i]].item() for i in range(start, len(whole)))
            assert float(response[0][0]) == pytest.approx(expected, abs=2e-3)
            checked += 1
    assert checked == 6
