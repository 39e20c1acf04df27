"""The app's "chat" API endpoint driven with gradio_client against `python app.py` on a free port."""

import threading

import pytest
from gradio_client import Client

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"
STORY = "Write a long story about a dragon who learns to cook."


def call(
    client,
    message,
    history=(),
    system="",
    checkpoint="base",
    temperature=0.0,
    max_new_tokens=24,
    top_p=0.95,
    top_k=50,
    repetition_penalty=1.0,
    seed=None,
    stop="",
):
    return client.submit(
        message,
        list(history),
        system,
        checkpoint,
        temperature,
        max_new_tokens,
        top_p,
        top_k,
        repetition_penalty,
        seed,
        stop,
        api_name="/chat",
    )


def text(message):
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


@pytest.fixture
def client(gradio_app):
    c = Client(gradio_app.url, verbose=False)
    yield c
    c.close()


def test_chat_streams_with_non_default_settings(client):
    job = call(
        client,
        QUESTION,
        system="Answer in one sentence.",
        temperature=0.0,
        max_new_tokens=20,
        top_p=0.5,
        top_k=10,
        repetition_penalty=1.1,
        seed=5,
    )
    updates = list(job)
    history, stats = job.result(timeout=120)
    assert len(updates) >= 3  # the reply arrived in pieces
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "Paris" in text(history[-1])
    assert "seed 5" in stats and "stopped: eos" in stats and "tok/s" in stats

    follow_up = call(client, "And of Italy?", history=history, max_new_tokens=20)
    history2, _ = follow_up.result(timeout=120)
    assert len(history2) == 4 and text(history2[0]) == QUESTION


def test_the_short_call_answers_with_every_setting_defaulted(client):
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/chat"]["parameters"]
    assert [p["parameter_name"] for p in params if not p["parameter_has_default"]] == ["message"]
    # the newest inputs come last, so callers that send values by position from before them still work
    assert [p["parameter_name"] for p in params][-3:] == ["stop", "min_p", "adapter_strength"]
    history, stats = client.predict(QUESTION, api_name="/chat")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert text(history[-1]).strip() and "tok/s" in stats
    # The README's full call names every input.
    full, stats = client.predict(
        message="And of Italy?",
        history=history,
        system_prompt="Answer in one sentence.",
        checkpoint="base",
        temperature=0.0,
        max_new_tokens=16,
        top_p=0.95,
        top_k=50,
        repetition_penalty=1.0,
        seed=-1,
        stop="",
        api_name="/chat",
    )
    assert len(full) == 4 and text(full[2]) == "And of Italy?" and "stopped:" in stats
    # the base model has no adapter to scale: it ignores the strength
    greedy = {"max_new_tokens": 8, "temperature": 0.0, "api_name": "/chat"}
    assert client.predict(QUESTION, adapter_strength=0.3, **greedy)[0] == client.predict(QUESTION, **greedy)[0]


def test_stop_endpoint_cancels_the_running_reply(client):
    job = call(client, STORY, temperature=0.8, max_new_tokens=400, seed=1)
    for update in job:
        history = update[0]
        if history and text(history[-1]).count(" ") > 3:
            break
    client.predict(api_name="/stop")
    history, stats = job.result(timeout=120)
    assert "stopped: cancelled" in stats
    assert int(stats.split(" token")[0]) < 400


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"message": ""}, "The message is empty"),
        ({"message": "hi", "checkpoint": "no-such-adapter"}, "no adapter called"),
        ({"message": "hi", "top_p": 0}, "Top-p must be between"),  # the slider's own bound, at the queue's door
        ({"message": "word " * 9000, "max_new_tokens": 8}, "does not fit this model's context window"),
    ],
)
def test_bad_requests_get_one_sentence(client, kwargs, needle):
    with pytest.raises(Exception, match=needle):
        call(client, **kwargs).result(timeout=120)


def test_two_clients_at_once_get_their_own_replies(gradio_app):
    clients = [Client(gradio_app.url, verbose=False) for _ in range(2)]
    prompts = [(QUESTION, "Answer in one sentence.", 0.0, None), (STORY, "", 1.2, 99)]
    alone = [call(clients[0], p, system=y, temperature=t, seed=s).result(timeout=120)[0] for p, y, t, s in prompts]
    together = [None, None]

    def run(i):
        p, y, t, s = prompts[i]
        together[i] = call(clients[i], p, system=y, temperature=t, seed=s).result(timeout=120)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert [text(h[-1]) for h in together] == [text(h[-1]) for h in alone]
    assert "Paris" in text(together[0][-1])
