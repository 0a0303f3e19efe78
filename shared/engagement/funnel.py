"""The lifecycle funnel: stages, the CRM phase of each, and when a contact moves between them.

Transitions are data. Each stage lists where a contact may go and when; moves can go back as well
as forward (a lead that goes cold, a customer at risk). A stage's own score (the points earned since
the contact entered it) can trigger a move, as can global engagement, the engagement quarter,
purchases and whether the contact is identified.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.engagement.index import Quarter, Thresholds

StageId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Phase = Literal["reach", "acquisition", "conversion", "retention", "loyalty"]
POST_PURCHASE: frozenset[str] = frozenset({"retention", "loyalty"})


class Facts(BaseModel):
    """What transitions look at, computed for one moment."""

    model_config = ConfigDict(frozen=True)

    identified: bool
    purchases: int
    engagement: float
    stage_score: float
    quarter: Quarter


class When(BaseModel):
    """Every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identified: bool | None = None
    purchased: bool | None = None
    purchases_at_least: int | None = Field(None, ge=1)
    engagement_at_least: float | None = None
    engagement_below: float | None = None
    stage_score_at_least: float | None = None
    stage_score_below: float | None = None
    quarter_in: tuple[Quarter, ...] | None = None

    @model_validator(mode="after")
    def _something(self) -> When:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a transition needs at least one condition")
        return self

    def holds(self, facts: Facts) -> bool:
        checks = (
            self.identified is None or facts.identified == self.identified,
            self.purchased is None or (facts.purchases > 0) == self.purchased,
            self.purchases_at_least is None or facts.purchases >= self.purchases_at_least,
            self.engagement_at_least is None or facts.engagement >= self.engagement_at_least,
            self.engagement_below is None or facts.engagement < self.engagement_below,
            self.stage_score_at_least is None or facts.stage_score >= self.stage_score_at_least,
            self.stage_score_below is None or facts.stage_score < self.stage_score_below,
            self.quarter_in is None or facts.quarter in self.quarter_in,
        )
        return all(checks)


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: StageId
    when: When
    reason: str = Field("", max_length=200)


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StageId
    phase: Phase
    description: str = ""
    #: entering this stage makes the contact sales-ready: a salesperson is assigned
    routes_lead: bool = False
    #: checked in order; the first that holds moves the contact
    transitions: tuple[Transition, ...] = ()


class Funnel(BaseModel):
    """A deployment's funnel and engagement thresholds (``GET``/``PUT /admin/funnel``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: Thresholds = Thresholds()
    initial: StageId
    #: where a lead goes when its salesperson accepts it (SAL)
    accepted: StageId
    stages: tuple[Stage, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Funnel:
        ids = [s.id for s in self.stages]
        if len(ids) != len(set(ids)):
            raise ValueError("stage ids must be unique")
        known = set(ids)
        for name in (self.initial, self.accepted):
            if name not in known:
                raise ValueError(f"{name!r} is not a stage of this funnel")
        for stage in self.stages:
            for transition in stage.transitions:
                if transition.to not in known:
                    raise ValueError(f"stage {stage.id!r} moves to unknown stage {transition.to!r}")
                if transition.to == stage.id:
                    raise ValueError(f"stage {stage.id!r} moves to itself")
        return self

    def stage(self, stage_id: str | None) -> Stage:
        """The stage by id; a contact in a stage this funnel no longer has is treated as new."""
        by_id = {s.id: s for s in self.stages}
        return by_id.get(stage_id or self.initial) or by_id[self.initial]

    def post_purchase(self, stage_id: str | None) -> bool:
        return self.stage(stage_id).phase in POST_PURCHASE


def default_funnel(thresholds: Thresholds = Thresholds()) -> Funnel:
    """subscriber → lead → MQL → SQL → opportunity (SAL) → customer → loyal, with at-risk and way back."""
    s, x = thresholds.sales, thresholds.exit
    bought = Transition(to="customer", when=When(purchased=True), reason="first purchase")
    return Funnel(
        thresholds=thresholds,
        initial="subscriber",
        accepted="opportunity",
        stages=(
            Stage(
                id="subscriber",
                phase="reach",
                description="known only by behaviour",
                transitions=(bought, Transition(to="lead", when=When(identified=True), reason="identified")),
            ),
            Stage(
                id="lead",
                phase="acquisition",
                description="identified, not yet qualified",
                transitions=(
                    bought,
                    Transition(to="sql", when=When(engagement_at_least=s), reason="sales-ready"),
                    Transition(to="mql", when=When(stage_score_at_least=20), reason="20 points as a lead"),
                ),
            ),
            Stage(
                id="mql",
                phase="acquisition",
                description="marketing-qualified",
                transitions=(
                    bought,
                    Transition(to="sql", when=When(engagement_at_least=s), reason="sales-ready"),
                    Transition(to="lead", when=When(engagement_below=x / 2), reason="went cold"),
                ),
            ),
            Stage(
                id="sql",
                phase="conversion",
                description="sales-qualified: assigned to a salesperson",
                routes_lead=True,
                transitions=(
                    bought,
                    Transition(
                        to="mql", when=When(engagement_below=s / 2), reason="cooled off before acceptance"
                    ),
                ),
            ),
            Stage(
                id="opportunity",
                phase="conversion",
                description="accepted by a salesperson (SAL)",
                transitions=(
                    bought,
                    Transition(to="mql", when=When(engagement_below=x), reason="opportunity went cold"),
                ),
            ),
            Stage(
                id="customer",
                phase="retention",
                description="bought",
                transitions=(
                    Transition(
                        to="at_risk",
                        when=When(quarter_in=(Quarter.EXIT,)),
                        reason="engagement fell below exit",
                    ),
                    Transition(
                        to="loyal",
                        when=When(purchases_at_least=3, quarter_in=(Quarter.RETENTION,)),
                        reason="third purchase, engaged",
                    ),
                ),
            ),
            Stage(
                id="loyal",
                phase="loyalty",
                description="repeat buyer, engaged",
                transitions=(
                    Transition(
                        to="at_risk",
                        when=When(quarter_in=(Quarter.EXIT,)),
                        reason="engagement fell below exit",
                    ),
                ),
            ),
            Stage(
                id="at_risk",
                phase="retention",
                description="customer slipping away",
                transitions=(
                    Transition(
                        to="customer", when=When(quarter_in=(Quarter.RETENTION,)), reason="engaged again"
                    ),
                ),
            ),
        ),
    )
