"""Cost optimisation (docs/analyses/cost.md): cache potential, cheaper-model candidates,
where the tokens go, and recommendations ranked by the dollars they save."""

from aimon.tasks.costopt.analyzer import analyze_costopt

__all__ = ["analyze_costopt"]
