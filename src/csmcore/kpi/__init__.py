"""KPIs: per-ticket metrics from event histories, survey scores (CSAT, NPS, CES), streaming and
mergeable aggregation grouped by ticket dimensions and time buckets, and customer-success
figures. Every formula and convention, with its source, is in ``docs/kpi-reference.md``.

Satisfaction ratings are ticket events (:class:`SatisfactionRated`, tag
``"ticket.satisfaction_rated"``), declared with the ticket event registry in this package;
``import csmcore`` imports it, so every store reads them.

>>> nps([10, 9, 6, 8])
25.0
>>> csat([5, 4, 4, 1])
0.75
"""

from __future__ import annotations

from csmcore.kpi._aggregate import (
    DEFAULT_AGE_EDGES,
    Backlog,
    Bucket,
    KpiAggregator,
    Kpis,
    SlaFigures,
    time_bucket,
)
from csmcore.kpi._customers import CustomerFigures, CustomerRecord, customer_figures
from csmcore.kpi._metrics import DURATION_METRICS, TicketMetrics, sla_outcome, ticket_metrics
from csmcore.kpi._satisfaction import NpsAnswer, SatisfactionRated, SurveyKind, nps_answers
from csmcore.kpi._scores import ScoreTally, ces, csat, nps
from csmcore.kpi._stats import DurationStats, DurationSummary

__all__ = [
    "DEFAULT_AGE_EDGES",
    "DURATION_METRICS",
    "Backlog",
    "Bucket",
    "CustomerFigures",
    "CustomerRecord",
    "DurationStats",
    "DurationSummary",
    "KpiAggregator",
    "Kpis",
    "NpsAnswer",
    "SatisfactionRated",
    "ScoreTally",
    "SlaFigures",
    "SurveyKind",
    "TicketMetrics",
    "ces",
    "csat",
    "customer_figures",
    "nps",
    "nps_answers",
    "sla_outcome",
    "ticket_metrics",
    "time_bucket",
]
