"""Who may call the API, checked on `workbench serve`'s app in process with no model loaded (nothing here
generates): the owner on this machine, a key holder, a visitor where the API is closed or open, a foreign Host."""

import pytest
from starlette.testclient import TestClient

from workbench.cli.serve import build_app
from workbench.config import Settings

KEY = "wbk-access-0123456789abcdef"
CHAT = {"model": "base", "messages": [{"role": "user", "content": "Hi"}]}
VISITOR = {"X-Forwarded-For": "203.0.113.9"}


def client(tmp_path, **settings) -> TestClient:
    app, _loading = build_app(Settings(home=tmp_path, **settings))  # the model is never loaded
    return TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000))


def error(response, status):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"].endswith(".")
    return body


def test_the_owner_on_this_machine_is_served_and_gets_503_while_the_model_loads(tmp_path):
    c = client(tmp_path)
    ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
    assert "base" in ids
    response = c.post("/v1/chat/completions", json=CHAT)
    assert error(response, 503)["code"] == "model_loading" and response.headers["retry-after"] == "5"
    assert error(c.get("/v1/models/nope"), 404)["param"] == "model"


def test_visitors_are_refused_unless_the_owner_opened_the_api(tmp_path):
    closed = client(tmp_path, trusted_proxies=1)
    response = closed.get("/v1/models", headers=VISITOR)
    assert error(response, 401)["type"] == "authentication_error" and response.headers["www-authenticate"] == "Bearer"
    opened = client(tmp_path, trusted_proxies=1, api_open=True, visitor_checkpoints=("adapters",))
    assert [m["id"] for m in opened.get("/v1/models", headers=VISITOR).json()["data"]] == []  # no base for visitors
    assert error(opened.post("/v1/chat/completions", json=CHAT, headers=VISITOR), 404)["code"] == "model_not_found"


def test_a_key_gives_the_owners_rights_and_a_wrong_one_is_refused_without_being_quoted(tmp_path):
    c = client(tmp_path, trusted_proxies=1, api_keys=(KEY,))
    auth = {"Authorization": f"Bearer {KEY}", **VISITOR}
    assert "base" in [m["id"] for m in c.get("/v1/models", headers=auth).json()["data"]]
    assert error(c.post("/v1/chat/completions", json=CHAT, headers=auth), 503)["code"] == "model_loading"
    wrong = "Bearer wbk-wrong-0123456789abcdef"
    response = c.get("/v1/models", headers={"Authorization": wrong, **VISITOR})
    assert error(response, 401)["code"] == "invalid_api_key" and "wbk-wrong" not in response.text
    on_loopback = client(tmp_path, api_keys=(KEY,)).get("/v1/models", headers={"Authorization": wrong})
    assert error(on_loopback, 401)["code"] == "invalid_api_key"  # a wrong key is wrong, even from this machine
    opened = client(tmp_path, trusted_proxies=1, api_keys=(KEY,), api_open=True)
    as_visitor = opened.post(
        "/v1/chat/completions", json=CHAT, headers={"Authorization": wrong, "X-Workbench-Store": "1"}
    )
    assert error(as_visitor, 403)["type"] == "permission_error"  # where visitors are let in, it is a visitor's


def test_visitor_limits_apply_before_anything_runs(tmp_path):
    c = client(tmp_path, trusted_proxies=1, api_open=True, visitor_max_new_tokens=64)
    too_long = {**CHAT, "max_tokens": 65}
    assert "limit" in error(c.post("/v1/chat/completions", json=too_long, headers=VISITOR), 400)["message"]
    stored = c.post("/v1/chat/completions", json=CHAT, headers={"X-Workbench-Store": "1", **VISITOR})
    assert error(stored, 403)["type"] == "permission_error"
    long_prompt = {"model": "base", "prompt": "word " * 2_000}  # over a visitor's 8,000 characters: never tokenized
    assert "limit" in error(c.post("/v1/completions", json=long_prompt, headers=VISITOR), 400)["message"]
    big = {**CHAT, "messages": [{"role": "user", "content": "a" * 3_000_000}]}
    assert error(c.post("/v1/chat/completions", json=big, headers=VISITOR), 413)["code"] == "too_large"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example"])
def test_a_foreign_host_name_is_refused(tmp_path, host):
    c = client(tmp_path)
    assert error(c.get("/v1/models", headers={"Host": host}), 421)["code"] == "misdirected_request"
