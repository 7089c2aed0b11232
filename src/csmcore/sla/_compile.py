"""What a book compiles once for the engine: the time lines targets measure on, the targets
in force per policy, and per target key the events that matter to it (private)."""

from __future__ import annotations

from collections.abc import Callable

from csmcore._time import US
from csmcore.calendars import BusinessCalendar
from csmcore.sla._enums import SlaMetric, SlaTrigger
from csmcore.sla._policy import CustomTimer, SlaPolicy, SlaTarget
from csmcore.tickets import Priority, Status, Ticket

__all__ = [
    "F_AGENT",
    "F_ANY",
    "F_ASSIGNED",
    "F_AWAITING",
    "F_DONE",
    "F_FIRST",
    "F_REOPENED",
    "F_REQUESTER",
    "F_SELECT",
    "F_SOLVED",
    "F_STATUS",
    "K_CUSTOM",
    "K_FIRST",
    "K_NEXT",
    "K_STATUS",
    "K_UPDATE",
    "WALL",
    "Business",
    "Compiled",
    "KeyPlan",
    "Spec",
    "TimeLine",
    "Wall",
]


class Wall:
    __slots__ = ()

    def pos(self, t: int) -> int:
        return t

    def at(self, p: int, floor: int, here: int) -> int:
        return p if p > floor else floor


class Business:
    """Positions on a business calendar: ``elapsed(a, b) == pos(b) - pos(a)``.

    Both methods are the calendar timeline's own (bound once here, so a query is one call).
    ``at(p, floor, here)`` is the earliest instant at or after ``floor`` whose position is at
    least ``p``, given ``here``, the position of ``floor``.
    """

    __slots__ = ("at", "pos")

    def __init__(self, cal: BusinessCalendar) -> None:
        timeline = cal.timeline
        self.pos: Callable[[int], int] = timeline.position
        self.at: Callable[[int, int, int], int] = timeline.instant_from


WALL = Wall()
TimeLine = Wall | Business


class Spec:
    """A target in force, compiled: the duration and thresholds in microseconds, its clock."""

    __slots__ = ("clock", "d", "policy", "policy_name", "target", "thresholds", "version", "within")

    def __init__(self, policy: SlaPolicy, target: SlaTarget, clock: TimeLine) -> None:
        self.policy = policy
        self.target = target
        self.clock = clock
        self.policy_name = policy.name
        self.version = policy.version
        self.within = target.within
        self.d = target.within // US
        self.thresholds = tuple(
            (w, -(-round(w * 1_000_000) * self.d // 1_000_000)) for w in target.warn_at
        )


class Compiled:
    """A policy's targets grouped by key (in order); ``by_priority`` holds the targets in force
    per priority when no target has a condition of its own (the usual case), else None."""

    __slots__ = ("by_priority", "condition", "groups", "policy", "trivial")

    def __init__(self, policy: SlaPolicy, groups: list[tuple[str, list[Spec]]]) -> None:
        self.policy = policy
        self.condition = policy.condition
        self.groups = groups
        self.trivial = all(spec.target.condition is None for _, specs in groups for spec in specs)
        self.by_priority: dict[Priority, dict[str, Spec]] | None = (
            {priority: self.in_force(None, priority) for priority in Priority}
            if self.trivial
            else None
        )

    def in_force(self, snapshot: Ticket | None, priority: Priority) -> dict[str, Spec]:
        """The first matching target of each key (the caller must not change the dict)."""
        out: dict[str, Spec] = {}
        for key, specs in self.groups:
            for spec in specs:
                target = spec.target
                if target.priority is not None and target.priority is not priority:
                    continue
                if target.condition is not None and (
                    snapshot is None or not target.condition.matches(snapshot)
                ):
                    continue
                out[key] = spec
                break
        return out


RUNS: dict[SlaMetric, frozenset[Status] | None] = {
    SlaMetric.FIRST_REPLY: None,
    SlaMetric.NEXT_REPLY: None,
    SlaMetric.PERIODIC_UPDATE: None,
    SlaMetric.PAUSABLE_UPDATE: frozenset(Status) - {Status.PENDING},
    SlaMetric.REQUESTER_WAIT: frozenset({Status.NEW, Status.OPEN, Status.ON_HOLD}),
    SlaMetric.AGENT_WORK: frozenset({Status.NEW, Status.OPEN}),
    SlaMetric.TOTAL_RESOLUTION: None,
    SlaMetric.CUSTOM: None,
}

# How a built-in key's cycles start and stop (see Run._replay).
K_FIRST, K_NEXT, K_UPDATE, K_STATUS, K_CUSTOM = range(5)
KIND: dict[SlaMetric, int] = {
    SlaMetric.FIRST_REPLY: K_FIRST,
    SlaMetric.NEXT_REPLY: K_NEXT,
    SlaMetric.PERIODIC_UPDATE: K_UPDATE,
    SlaMetric.PAUSABLE_UPDATE: K_UPDATE,
    SlaMetric.REQUESTER_WAIT: K_STATUS,
    SlaMetric.AGENT_WORK: K_STATUS,
    SlaMetric.TOTAL_RESOLUTION: K_STATUS,
    SlaMetric.CUSTOM: K_CUSTOM,
}


class KeyPlan:
    """What the engine needs of one target key, worked out once per book."""

    __slots__ = (
        "key",
        "kind",
        "metric",
        "mixed",
        "pausable",
        "relevant",
        "runs",
        "start_flags",
        "stop_flags",
        "timer",
        "transitions",
    )

    def __init__(
        self,
        key: str,
        metric: SlaMetric,
        timer: CustomTimer | None,
        mixed: bool,
        pausable: bool = False,
    ) -> None:
        self.key = key
        self.mixed = mixed
        """Whether the key's targets measure on more than one clock."""
        self.pausable = pausable
        """Whether some target of the key pauses while pending (``SlaTarget.pausable``)."""
        self.metric = metric
        self.kind = KIND[metric]
        self.timer = timer
        self.start_flags = 0 if timer is None else trigger_flags(timer.start_on)
        self.stop_flags = 0 if timer is None else trigger_flags(timer.stop_on)
        self.transitions = timer is not None and bool(
            timer.start_on_change or timer.stop_on_change or timer.reset_on_change
        )
        """Whether the timer has triggers written as transitions."""
        self.runs = RUNS[metric]
        self.relevant = RELEVANT[metric]


# Event flags, computed once per event and shared by every target key.
F_FIRST = 1  # the creation event
F_AGENT = 2  # a public agent reply
F_REQUESTER = 4  # a public requester comment (or one logged on the requester's behalf)
F_SOLVED = 8  # entered the solved / closed category
F_REOPENED = 16  # left it
F_ASSIGNED = 32
F_SELECT = 64  # the targets in force changed
F_STATUS = 128  # the status category changed
F_AWAITING = 256  # still in the first-reply phase before this event
F_ANY = 512  # every event
F_DONE = F_AGENT | F_SOLVED  # ends a reply or update cycle

TRIGGER_FLAGS = {
    SlaTrigger.CREATED: F_FIRST,
    SlaTrigger.REQUESTER_COMMENT: F_REQUESTER,
    SlaTrigger.AGENT_REPLY: F_AGENT,
    SlaTrigger.SOLVED: F_SOLVED,
    SlaTrigger.REOPENED: F_REOPENED,
    SlaTrigger.ASSIGNED: F_ASSIGNED,
}

# The events that can change a target key's cycles, by metric. At any other event the key's
# step does nothing (its cycle keeps running or stays paused, with the same target), so it is
# skipped; a breach found at the next relevant event is the same instant (see Cycle.check).
REPLY_FLAGS = F_AGENT | F_SOLVED | F_SELECT
STATUS_FLAGS = F_FIRST | F_SOLVED | F_REOPENED | F_SELECT | F_STATUS
RELEVANT: dict[SlaMetric, int] = {
    SlaMetric.FIRST_REPLY: REPLY_FLAGS | F_FIRST,
    SlaMetric.NEXT_REPLY: REPLY_FLAGS | F_REQUESTER | F_REOPENED,
    SlaMetric.PERIODIC_UPDATE: REPLY_FLAGS | F_FIRST,
    SlaMetric.PAUSABLE_UPDATE: REPLY_FLAGS | F_FIRST | F_STATUS,
    SlaMetric.REQUESTER_WAIT: STATUS_FLAGS,
    SlaMetric.AGENT_WORK: STATUS_FLAGS,
    SlaMetric.TOTAL_RESOLUTION: STATUS_FLAGS,
    SlaMetric.CUSTOM: F_ANY,
}


def trigger_flags(triggers: frozenset[SlaTrigger]) -> int:
    out = 0
    for trigger in triggers:
        out |= TRIGGER_FLAGS[trigger]
    return out
