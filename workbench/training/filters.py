"""Which of the store's feedback trains a run: the filters votes, likes and corrections share, declared once.

    filters = FeedbackFilters(checkpoints=("base",), rater_kind="humans", origin="chat", since="2026-12-01")
    filters.keeps_reply(row)                         # a like's or a correction's row: its reply's checkpoint, ...
    argv(filters)                                    # ["--vote-checkpoint", "base", "--vote-raters", "humans", ...]

Each filter is one dataclass field declared with `feedback_filter(default, help, ...)`: the filter's check, the
`workbench train` flag (`--vote-<flag>`: the prefix the store-feedback filters have had since DPO on votes came
first; `cli/train.py` adds one per field), the job's command line (`argv`, what `training.jobs` runs) and the
Fine-tune tab's input of the same name (`vote_<field>`) derive from it. `FeedbackFilters` holds the filters every
source has (the checkpoints that wrote the replies, the raters, whose feedback counts, where the replies came
from, a date range); `votes.VoteFilters` adds the pairs' own and `likes.LikeFilters` reads the chat's replies by
default. Torch-free.
"""

from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.errors import WorkbenchError
from workbench.store.records import RATER_KINDS, check_rater_kind, is_judge

ORIGINS = ("all", "chat", "battle")  # every stored reply, the chat's, or those of a prompt typed in the Arena
PREFIX = "vote_"  # a filter's name on the Fine-tune tab and in the "train" endpoint; `--vote-` on the CLI


def feedback_filter(
    default: Any,
    flag: str,
    help: str,
    *,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    repeat: bool = False,
    kind: type = str,
) -> Any:
    """A filter field: its default, its flag (`--vote-<flag>`), its one-line help (the flag's and the tab's).

    Args:
        default: The value that keeps everything this filter is about.
        flag: The flag's name after `--vote-`.
        help: What the filter keeps, in a few words.
        metavar: The flag's placeholder (a bool field is a switch and has none).
        choices: The accepted values of a text filter.
        repeat: A tuple filter whose flag is given once per value.
        kind: What the flag's value is read as (str, float; a bool default makes a switch).
    """
    meta = {"flag": flag, "help": help, "metavar": metavar, "choices": choices, "repeat": repeat, "kind": kind}
    return field(default=default, metadata={"filter": meta})


def declared(cls: type) -> list[Field]:
    """The filter fields of a filters class, in declaration order."""
    return [f for f in fields(cls) if "filter" in f.metadata]


def flag(f: Field) -> str:
    """The CLI flag of a filter field (`rater_kind` -> `--vote-raters`)."""
    return "--vote-" + f.metadata["filter"]["flag"]


def _day(value: str | None, name: str) -> float | None:
    """Epoch seconds of the start of an ISO date (YYYY-MM-DD, UTC), or None."""
    if value is None or not str(value).strip():
        return None
    try:
        day = datetime.strptime(str(value).strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise WorkbenchError(f"The {name} date must be a date such as 2026-12-01, not {value!r}.") from None
    return day.timestamp()


@dataclass(frozen=True)
class FeedbackFilters:
    """Which of the store's feedback trains a run (the filters every source has).

    Attributes:
        checkpoints: Keep feedback on outputs of these checkpoints (a pair: both sides; empty: any).
        raters: Keep feedback by these raters (empty: any).
        rater_kind: Whose feedback counts: "humans" (people's, the default), "judges" (LLM judges') or "all".
        origin: Where the replies came from: "all", "chat" (the chat's) or "battle" (a prompt typed in the Arena).
        since: Keep feedback given on or after this date (YYYY-MM-DD, UTC; None: from the first).
        until: Keep feedback given on or before this date (inclusive; None: to the last).
    """

    checkpoints: tuple[str, ...] = feedback_filter(
        (),
        "checkpoint",
        "only feedback on outputs of these checkpoints (a pair: both sides)",
        metavar="CHECKPOINT",
        repeat=True,
    )
    raters: tuple[str, ...] = feedback_filter(
        (), "rater", "only feedback by these raters", metavar="RATER", repeat=True
    )
    rater_kind: str = feedback_filter(
        "humans", "raters", "whose feedback trains: people's, LLM judges' (judge:<model>) or all", choices=RATER_KINDS
    )
    origin: str = feedback_filter(
        "all", "origin", "where the replies came from: any, the chat's, or a prompt typed in the Arena", choices=ORIGINS
    )
    since: str | None = feedback_filter(
        None, "since", "only feedback given on or after this day (UTC)", metavar="YYYY-MM-DD"
    )
    until: str | None = feedback_filter(
        None, "until", "only feedback given on or before this day (UTC)", metavar="YYYY-MM-DD"
    )

    def __post_init__(self) -> None:
        for name in ("checkpoints", "raters"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else tuple(value or ())
            object.__setattr__(self, name, tuple(str(v).strip() for v in value if v and str(v).strip()))
        object.__setattr__(self, "rater_kind", check_rater_kind(self.rater_kind))
        if self.origin not in ORIGINS:
            raise WorkbenchError(f"The replies' origin must be one of {', '.join(ORIGINS)}, not {self.origin!r}.")
        for name in ("since", "until"):
            value = getattr(self, name)
            object.__setattr__(self, name, str(value).strip() if value is not None and str(value).strip() else None)
        start, end = self.window
        if start is not None and end is not None and end <= start:
            raise WorkbenchError(f"The date range ends ({self.until}) before it starts ({self.since}).")

    @property
    def window(self) -> tuple[float | None, float | None]:
        """(first second, second after the last day) of the date range, epoch seconds; None where open."""
        end = _day(self.until, "until")
        return _day(self.since, "since"), None if end is None else end + timedelta(days=1).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def keeps(self, models: tuple[str, ...], origins: tuple[str | None, ...], rater: str, tstamp: float) -> bool:
        """Whether feedback by `rater` at `tstamp` on replies of `models` with `origins` passes the filters."""
        start, end = self.window
        return not (
            (self.checkpoints and not set(models) <= set(self.checkpoints))
            or (self.raters and rater not in self.raters)
            or (self.rater_kind != "all" and is_judge(rater) != (self.rater_kind == "judges"))
            or (self.origin != "all" and any(o != self.origin for o in origins))
            or (start is not None and tstamp < start)
            or (end is not None and tstamp >= end)
        )

    def keeps_reply(self, row: dict[str, Any]) -> bool:
        """Whether a row about one reply (a reaction's or a correction's: model, origin, rater, tstamp) passes."""
        return self.keeps((row["model"],), (row["origin"],), row["rater"], row["tstamp"])


def argv(filters: FeedbackFilters) -> list[str]:
    """The `workbench train` flags that give these filters (a default is left out; a switch is its flag)."""
    out: list[str] = []
    for f in declared(type(filters)):
        value = getattr(filters, f.name)
        if value == f.default:
            continue
        if f.metadata["filter"]["repeat"]:
            out += [part for v in value for part in (flag(f), v)]
        elif isinstance(value, bool):
            out.append(flag(f))
        else:
            out += [flag(f), str(value)]
    return out
