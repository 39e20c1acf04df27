"""Who may do what: admin actions closed on a public server, wrong tokens throttled per client address, the
client address read from our own proxy's entry, what counts as this machine, keyed voter ids, per-visitor
limits, and the Space defaults for the store.

In-process and fast; the same rules over HTTP are in tests/e2e/test_public_space.py.
"""

from __future__ import annotations

import pytest

from workbench import access
from workbench.config import SPACE_DATA, Settings
from workbench.errors import WorkbenchError
from workbench.gate.limits import RateLimit, reply_limit, vote_limit
from workbench.gate.sizes import check_chat, sizes_for, visitor_sizes
from workbench.generation.settings import GenerationSettings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("", False)],
)
def test_loopback_is_only_this_machine(host, loopback):
    assert access.is_loopback(host) is loopback


def test_admin_actions_are_closed_on_a_public_server_without_a_token(tmp_path):
    laptop = Settings(home=tmp_path)  # GRADIO_SERVER_NAME unset: Gradio's own default, loopback
    laptop.check_admin(None)
    public = Settings(home=tmp_path, host="0.0.0.0")
    with pytest.raises(
        WorkbenchError, match=r"closed on this server for callers from elsewhere.*WORKBENCH_ADMIN_TOKEN"
    ):
        public.check_admin(None)
    Settings(home=tmp_path, host="0.0.0.0", admin_open="1").check_admin(None)  # the operator's explicit opt-out
    with pytest.raises(WorkbenchError, match="closed"):
        Settings(home=tmp_path, admin_open="0").check_admin(None)  # closed even on loopback
    guarded = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret")
    guarded.check_admin("s3cret", who=access.Caller("203.0.113.7", False))
    with pytest.raises(WorkbenchError, match="needs the admin token"):
        guarded.check_admin(None, who=access.Caller("203.0.113.7", False))
    with pytest.raises(WorkbenchError, match=r"Admin open \(WORKBENCH_ADMIN_OPEN\) must be"):
        Settings(home=tmp_path, admin_open="maybe")


def test_settings_come_from_the_environment(tmp_path):
    env = {"WORKBENCH_HOME": str(tmp_path), "GRADIO_SERVER_NAME": "0.0.0.0", "WORKBENCH_RATE_LIMIT": "7"}
    settings = Settings.from_env(env)
    assert not settings.admin_without_token and settings.rate_limit == 7 and settings.trusted_proxies == 0
    space = Settings.from_env({**env, "SPACE_ID": "me/demo"})
    assert space.space and space.trusted_proxies == 1  # the Space's own proxy
    with pytest.raises(WorkbenchError, match="WORKBENCH_VOTE_LIMIT"):
        Settings.from_env({**env, "WORKBENCH_VOTE_LIMIT": "lots"})


def test_a_space_without_persistent_storage_is_warned_about(tmp_path):
    assert Settings(home=tmp_path).store_survives_restart  # not a Space
    on_space = Settings(home=tmp_path, space=True)
    # With /data (persistent storage) the store goes there; without it, it is in the app folder and is warned of.
    assert on_space.db_url.startswith("sqlite:////data/") is SPACE_DATA.is_dir()
    assert on_space.store_survives_restart is SPACE_DATA.is_dir()
    assert Settings(home=tmp_path, space=True, db_url="sqlite:////data/workbench/x.db").store_survives_restart
    assert Settings(home=tmp_path, space=True, db_url="postgresql+psycopg://u@db/x").store_survives_restart


@pytest.fixture
def throttle():
    access.THROTTLE.reset()
    yield access.THROTTLE
    access.THROTTLE.reset()


def test_wrong_tokens_are_throttled_per_address_and_the_shell_is_not(tmp_path, throttle):
    guarded = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret")
    guesser = access.Caller("198.51.100.1", False)
    for i in range(access.MAX_FAILURES):
        with pytest.raises(WorkbenchError, match="needs the admin token"):
            guarded.check_admin(f"guess-{i}", who=guesser)
    with pytest.raises(WorkbenchError, match="Too many wrong admin tokens from your address"):
        guarded.check_admin("s3cret", who=guesser)
    guarded.check_admin("s3cret", who=access.Caller("198.51.100.2", False))  # another address is not held up
    for i in range(access.MAX_FAILURES + 2):  # this machine's own shell is never throttled
        with pytest.raises(WorkbenchError, match="needs the admin token"):
            guarded.check_admin(f"guess-{i}")
    guarded.check_admin("s3cret")


def test_a_repeated_wrong_token_is_one_guess_and_every_check_counts(tmp_path, throttle):
    guarded = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret")
    timer = access.Caller("198.51.100.7", False)
    for _ in range(3 * access.MAX_FAILURES):  # a page's timer sending the box's wrong value every two seconds
        assert not guarded.admin_allowed("typo", timer)
    assert guarded.admin_allowed("s3cret", timer)  # one guess so far: the right token still passes
    for i in range(access.MAX_FAILURES):  # the page-display check is throttled like check_admin
        assert not guarded.admin_allowed(f"guess-{i}", timer)
    with pytest.raises(WorkbenchError, match="Too many wrong admin tokens"):
        guarded.check_admin("s3cret", timer)
    assert not guarded.admin_allowed(None, access.Caller("198.51.100.8", False))  # no token: not a guess
    assert guarded.admin_allowed("s3cret", access.Caller("198.51.100.8", False))


def test_a_flood_from_many_addresses_never_locks_the_owner_out(tmp_path, throttle):
    guarded = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret")
    for n in range(access.MAX_FAILURES_ALL):  # fifty addresses, one wrong guess each
        with pytest.raises(WorkbenchError, match="needs the admin token"):
            guarded.check_admin(f"guess-{n}", access.Caller(f"203.0.113.{n}", False))
    # Crowded now: an address that already failed gets no second try in the window...
    with pytest.raises(WorkbenchError, match="Too many wrong admin tokens"):
        guarded.check_admin("guess-again", access.Caller("203.0.113.1", False))
    # ...a fresh address gets one, and the owner's right token passes.
    with pytest.raises(WorkbenchError, match="needs the admin token"):
        guarded.check_admin("one-more", access.Caller("192.0.2.200", False))
    guarded.check_admin("s3cret", access.Caller("192.0.2.10", False))
    assert guarded.access.proven(access.Caller("192.0.2.10", False))  # uploads may follow from that address
    assert not guarded.access.proven(access.Caller("192.0.2.11", False))


def test_the_answer_to_a_wrong_token_is_the_same_sentence_everywhere(tmp_path, throttle):
    from workbench.store import Store
    from workbench.ui.context import AppContext

    settings = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret")
    sentences = set()
    for check in (
        lambda: settings.check_admin("wrong-1", access.Caller("192.0.2.1", False)),
        lambda: Store(f"sqlite:///{tmp_path / 's.db'}", access=settings.access).check_admin(
            "wrong-2", access.Caller("192.0.2.2", False)
        ),
    ):
        with pytest.raises(WorkbenchError) as caught:
            check()
        sentences.add(str(caught.value))
    ctx = AppContext(settings)
    # An in-process call is this machine's shell; through the server it is the visitor's address.
    sentences.add(ctx.admin_refusal("wrong-3", None))
    assert sentences == {access.NEEDS_TOKEN}


def test_visitors_get_stricter_limits_than_the_owner(tmp_path):
    public = Settings(home=tmp_path, host="0.0.0.0", visitor_max_new_tokens=256)
    sizes = sizes_for(public)
    assert sizes == visitor_sizes(public) and sizes.max_new_tokens == 256
    assert sizes_for(Settings(home=tmp_path)).message_chars > sizes.message_chars
    assert (reply_limit(public).count, vote_limit(public).count) == (public.rate_limit, public.vote_limit)
    check_chat(sizes, "Hi", "", [{"role": "user", "content": "a"}], GenerationSettings(max_new_tokens=256))
    refusals = {
        "Max new tokens": ("Hi", "", [], GenerationSettings(max_new_tokens=257)),
        "The message is": ("x" * (sizes.message_chars + 1), "", [], GenerationSettings()),
        "The system prompt": ("Hi", "s" * (sizes.system_chars + 1), [], GenerationSettings()),
        "messages": ("Hi", "", [{"role": "user", "content": "a"}] * (sizes.history_messages + 1), GenerationSettings()),
        "holds": ("Hi", "", [{"role": "user", "content": "a" * (sizes.history_chars + 1)}], GenerationSettings()),
        "stop strings": ("Hi", "", [], GenerationSettings(stop=[f"s{i}" for i in range(sizes.stop_strings + 1)])),
        "A stop string": ("Hi", "", [], GenerationSettings(stop=["z" * (sizes.stop_chars + 1)])),
    }
    for expected, (message, system, history, generation) in refusals.items():
        with pytest.raises(WorkbenchError, match=expected):
            check_chat(sizes, message, system, history, generation)


def test_rate_limits_count_per_key_in_a_sliding_window():
    limit = RateLimit(3, 60.0, "replies")
    for _ in range(3):
        limit.take("a")
    with pytest.raises(WorkbenchError, match="limit of 3 replies per minute: try again in"):
        limit.take("a")
    limit.take("b")
    limit.period_s = 0.0  # the window passed
    limit.take("a")
    RateLimit(0, 60.0, "votes").take("a")  # 0 means no limit


def test_a_public_app_without_a_token_has_no_admin_events_at_all(tmp_path):
    from workbench.ui.demo import build_demo

    def api_names(settings: Settings) -> set[str]:
        demo = build_demo(settings)
        return {fn.api_name for fn in demo.fns.values() if fn.api_name}

    closed = api_names(Settings(home=tmp_path, host="0.0.0.0"))
    assert not {"train", "cancel_training", "resume_training", "check"} & closed  # nothing to call, even by index
    assert {"chat", "arena_next", "vote_left"} <= closed
    guarded = api_names(Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret"))
    assert {"train", "cancel_training", "resume_training"} <= guarded  # there, and each checks the token


def test_arena_names_come_from_a_login_or_the_owner_never_from_a_typed_name_in_public(tmp_path):
    from types import SimpleNamespace

    from workbench.ui.arena import visitor as _visitor
    from workbench.ui.context import AppContext

    public = AppContext(Settings(home=tmp_path, host="0.0.0.0"))
    name, voter = _visitor(public, "alice", None)
    assert name is None and len(voter) == 32  # typed names count for nothing on a public server
    assert _visitor(public, "", None, SimpleNamespace(username="alice"))[0] == "alice@hf"  # signed in on a Space
    assert _visitor(public, "bob", None)[1] == voter  # the voter is the address, whatever the name
    owner = AppContext(Settings(home=tmp_path))
    assert _visitor(owner, "alice", None)[0] == "alice"


def test_a_voter_id_cannot_be_matched_to_an_address_without_the_secret(tmp_path):
    """The attack of issue 17: an unsalted sha256 of the address gave 203.0.113.77 back from a sweep of its /16 in
    0.06 s. The same sweep finds the address only with the store's secret."""
    import hashlib
    import ipaddress
    import secrets
    import stat

    secret = access.voter_secret(tmp_path)
    key_file = tmp_path / access.SECRET_FILE
    assert len(bytes.fromhex(secret.decode())) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert access.voter_secret(tmp_path) == secret  # made once, then read
    shown = access.voter_id(access.address_key("203.0.113.77"), secret)  # what the Raters filter and export show
    network = [str(ip) for ip in ipaddress.ip_network("203.0.0.0/16")]

    def sweep(guess) -> list[str]:
        return [address for address in network if guess(address) == shown]

    assert sweep(lambda address: access.voter_id(address, secret)) == ["203.0.113.77"]  # the sweep itself works
    assert sweep(lambda address: access.voter_id(address, secrets.token_hex(32).encode())) == []
    assert sweep(lambda address: hashlib.sha256(address.encode()).hexdigest()[: len(shown)]) == []
    # One person behind IPv6 holds a whole /64: one voter, not 2**64 of them; the next /64 is someone else.
    same = {access.voter_id(access.address_key(a), secret) for a in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")}
    other = access.voter_id(access.address_key("2001:db8:1:3::1"), secret)
    assert len(same) == 1 and other not in same


def test_errors_on_the_page_carry_no_server_paths_or_secrets(monkeypatch):
    from workbench.ui.context import user_error

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    sentence = "llama.cpp could not load 'a'; its file is /srv/app/models/adapters/a/x.gguf (key {})."
    shown = str(user_error(WorkbenchError(sentence.format("sk-test-0123456789abcdef"))))
    assert "/srv/app" not in shown and "sk-test-0123456789abcdef" not in shown and "x.gguf" in shown


def test_visitors_choose_only_what_the_owner_offers_and_cannot_stop_others(tmp_path):
    from types import SimpleNamespace

    from workbench.gate.visitor import Visitor
    from workbench.ui.context import AppContext

    settings = Settings(home=tmp_path, host="0.0.0.0")
    ctx = AppContext(settings)
    visitor = Visitor(access.Caller("203.0.113.4", False), False, sizes_for(settings, False))
    owner = Visitor(access.SHELL, True, sizes_for(settings, True))
    ctx.check_checkpoint(visitor, "base")
    ctx.check_checkpoint(visitor, "my-run")
    with pytest.raises(WorkbenchError, match="Remote models are not offered to visitors"):
        ctx.check_checkpoint(visitor, "remote:gpt4o-mini")  # a paid API is the owner's choice
    ctx.check_checkpoint(owner, "remote:gpt4o-mini")
    closed = AppContext(Settings(home=tmp_path, host="0.0.0.0", visitor_checkpoints="base"))
    with pytest.raises(WorkbenchError, match="Adapters are not offered"):
        closed.check_checkpoint(visitor, "my-run")
    # Stop finds a reply by session and address: the same session hash from another address stops nothing.
    reply = SimpleNamespace(cancelled=False, cancel=lambda: setattr(reply, "cancelled", True))
    ctx.track(("session-abc", "203.0.113.4"), reply)
    assert not ctx.cancel(("session-abc", "198.51.100.66")) and not reply.cancelled
    assert ctx.cancel(("session-abc", "203.0.113.4")) and reply.cancelled
    # A visitor's reply counts; the owner's does not.
    for _ in range(settings.rate_limit):
        ctx.take_reply(visitor)
        ctx.take_reply(owner)
    with pytest.raises(WorkbenchError, match="limit of"):
        ctx.take_reply(visitor)
    ctx.take_reply(owner)


def test_a_visitors_router_shares_the_engines_and_never_evicts(tmp_path):
    from workbench.generation.router import Router

    loads = []
    router = Router(Settings(home=tmp_path), main=lambda: loads.append(1) or object())
    visitors = router.for_visitors()
    assert router.main() is visitors.main() and loads == [1]  # one model in memory for both
    assert router.evict and not visitors.evict


def test_a_page_of_unknown_origin_is_never_this_machine():
    laptop = {"host": "127.0.0.1:7860"}
    assert access.is_local_request("127.0.0.1", laptop, trusted_proxies=0, shared=False)
    assert access.is_local_request(
        "127.0.0.1", {**laptop, "origin": "http://localhost:7860"}, trusted_proxies=0, shared=False
    )
    for origin in ("null", "https://attacker.example", "file://", ""):  # a sandboxed iframe or a file:// page: null
        assert not access.is_local_request(
            "127.0.0.1", {**laptop, "origin": origin}, trusted_proxies=0, shared=False
        ), origin
