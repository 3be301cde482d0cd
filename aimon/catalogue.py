"""The metric catalogue (docs/reference/metrics.md is generated from it): the names the Grafana dashboard,
the Prometheus rules and the metrics table share, with a one-line meaning.

The meaning becomes the HELP line of a pushed or exported series. A name missing here
is still pushed and exported (with a generic HELP); the test suite checks that every
name a run emits and every name the rules and dashboard use is listed, so the contract
stays written down in one place.
"""

from __future__ import annotations

import re

METRICS: dict[str, str] = {
    # operational (aimon.tasks.operational)
    "llm_requests": "Accepted requests in the window.",
    "llm_requests_per_minute": "Mean requests per minute over the window.",
    "llm_errors": "Failed requests in the window; error_type=__all__ is the total.",
    "llm_error_rate": "Failed requests / requests in the window.",
    "llm_latency_seconds": "Latency quantile over the window's requests.",
    # cost (aimon.tasks.cost)
    "llm_tokens": "Tokens in the window, by type (input, output, cached_input).",
    "llm_cost_usd": "Spend in the window in USD.",
    "llm_unpriced_requests": "Requests left out of llm_cost_usd (no price, or no tokens).",
    "llm_budget_used_ratio": "Spend so far in the budget period / the budget.",
    "llm_budget_usd": "The configured budget for the period in USD.",
    "llm_cost_forecast_usd": (
        "Month-end spend forecast in USD (cost.forecast: weekday-aware, or the month-to-date rate)."
    ),
    "llm_cost_forecast_usd_low": (
        "Lower end of the month-end forecast's interval (cost.forecast.interval, default 90%)."
    ),
    "llm_cost_forecast_usd_high": "Upper end of the month-end forecast's interval.",
    "llm_budget_forecast_ratio": "Month-end forecast / the monthly budget.",
    # cost optimisation (aimon.tasks.costopt)
    "llm_cache_requests": "Requests with a prompt (the cache potential's denominator).",
    "llm_cache_repeat_share": (
        "Share of requests whose normalised prompt repeats an earlier one (same model, endpoint)."
    ),
    "llm_cache_repeat_cost_usd": (
        "Spend of the repeated requests in the window in USD (what an exact-match cache saves)."
    ),
    "llm_prompt_cache_served_share": "Share of input tokens served from the provider's prompt cache.",
    "llm_prompt_cache_cacheable_share": (
        "Estimated share of input tokens in repeated prompt prefixes (cache.prefix_chars)."
    ),
    "llm_tokens_quantile": "Input or output tokens per request at a quantile (type, quantile).",
    "llm_long_prompt_cost_share": "Share of the spend from requests above the input-token quantile (long prompts).",
    "llm_truncated_share": "Share of requests whose output stopped at max_tokens (finish_reason).",
    "llm_truncated_output_tokens": "Output tokens of the requests cut off at max_tokens.",
    "llm_group_cost_usd": "Spend per value of a grouping column (group, key; top N, the rest key=__other__).",
    "llm_group_folded_values": "Values of the grouping column folded into key=__other__.",
    "llm_group_top_cost_share": "Share of the spend carried by the grouping column's top N values.",
    "llm_group_budget_used_ratio": "Spend so far in the period / the budget of one grouping value.",
    "llm_cost_per_request_usd": "Mean spend per request of a model on an endpoint.",
    "llm_model_switch_quality_change_low": (
        "Lower end of the 95% interval of a cheaper candidate's relative quality change against the model (metric)."
    ),
    "llm_cost_saving_usd": (
        "Monthly USD a recommendation would save at the window's rate (kind=cache|prompt_cache|model_switch)."
    ),
    # drift
    "data_drift_score": "Drift statistic or distance of a feature against the reference.",
    "data_drift_scaled_score": "A feature's effect x sqrt(nm / (n + m)) at the window's sizes (learned bounds).",
    "data_drift_p_value": "Drift test p-value of a feature, where the method has one.",
    "data_drift_detected": "1 if the feature drifted against the reference, else 0.",
    "data_drift_share": "Share of drifted features.",
    "data_drift_p_value_adjusted": "Benjamini-Hochberg adjusted p-value of a feature's drift test.",
    "data_drift_dataset_detected": "1 if the share of drifted features reached drift.dataset_share, else 0.",
    "embedding_drift_p_value": "Permutation-test p-value of the embedding MMD or centroid distance (label method).",
    "embedding_centroid_distance_info": (
        "1, labelled with the centroid distance used: distance=scaled (Euclidean over the within-sample "
        "spread) or cosine (unit-length embeddings with a clearly non-zero mean)."
    ),
    "embedding_drift_score": "Embedding drift score against the reference.",
    "embedding_drift_auc_z": (
        "Domain-classifier AUC above 0.5 in units of its null spread at the window's sample sizes "
        "(what the learned AUC bound is learned from)."
    ),
    "embedding_drift_detected": "1 if the embeddings drifted against the reference, else 0.",
    "data_drift_judged": "1 if the feature had drift.min_sample rows on both sides, else 0 (not judged: detected 0).",
    "data_drift_threshold": "Bound a feature's effect was judged against (learned from its past scores, >= the floor).",
    "embedding_drift_judged": "1 if both embedding samples had drift.embeddings.min_sample rows, else 0.",
    "embedding_drift_threshold": "Domain-classifier AUC bound of the embedding verdict (learned, >= auc_threshold).",
    "embedding_rows_rejected": (
        "Malformed embeddings left out of embedding drift, by reason "
        "(not_json, not_a_list, non_numeric, nonfinite, wrong_dimension)."
    ),
    # quality
    "model_accuracy": "Classification accuracy in the window.",
    "model_f1": "Classification F1 in the window.",
    "model_accuracy_estimated": "Accuracy expected from calibrated confidences (CBPE), no labels needed.",
    "model_precision_estimated": "Precision expected from calibrated confidences (CBPE; >2 classes: error mix).",
    "model_recall_estimated": "Recall expected from calibrated confidences (CBPE; >2 classes: error mix).",
    "model_f1_estimated": "F1 expected from calibrated confidences (CBPE; >2 classes: error mix).",
    "model_accuracy_estimated_ci_low": "Lower end of the 95% interval of model_accuracy_estimated.",
    "model_accuracy_estimated_ci_high": "Upper end of the 95% interval of model_accuracy_estimated.",
    "model_precision_estimated_ci_low": "Lower end of the 95% interval of model_precision_estimated.",
    "model_precision_estimated_ci_high": "Upper end of the 95% interval of model_precision_estimated.",
    "model_recall_estimated_ci_low": "Lower end of the 95% interval of model_recall_estimated.",
    "model_recall_estimated_ci_high": "Upper end of the 95% interval of model_recall_estimated.",
    "model_f1_estimated_ci_low": "Lower end of the 95% interval of model_f1_estimated.",
    "model_f1_estimated_ci_high": "Upper end of the 95% interval of model_f1_estimated.",
    "model_accuracy_estimation_error": "Estimated minus realised accuracy over the window's labelled rows.",
    "model_precision": "Classification precision in the window.",
    "model_recall": "Classification recall in the window.",
    "generation_rouge": "ROUGE of generated answers against reference answers.",
    "semantic_similarity": "Mean cosine similarity of response embeddings to reference-answer embeddings.",
    "semantic_reference_similarity": (
        "Mean cosine similarity of the window's response embeddings to the nearest k-means centroid of the "
        "reference period's responses on the same endpoint (label-free)."
    ),
    "semantic_similarity_ci_low": "Lower end of the 95% interval of semantic_similarity.",
    "semantic_similarity_ci_high": "Upper end of the 95% interval of semantic_similarity.",
    "generation_bleu": "BLEU of generated answers against reference answers.",
    "rag_precision_at_k": "Retrieval precision at k.",
    "rag_recall_at_k": "Retrieval recall at k.",
    "rag_ndcg_at_k": "Retrieval NDCG at k.",
    "rag_mrr": "Retrieval mean reciprocal rank.",
    "feedback_rating_mean": "Mean user rating (1-5) in the window.",
    "feedback_helpful_ratio": "Share of feedback marked helpful.",
    "feedback_count": "Feedback entries in the window.",
    "feedback_coverage": "Share of the window's requests with feedback.",
    "feedback_invalid_rows": "Feedback rows left out (rating outside 1-5).",
    "feedback_unmatched_rows": "Feedback rows whose request_id matches no request of the window.",
    "generation_rouge_ci_low": "Lower bound of the bootstrap 95% interval of ROUGE (sampled windows).",
    "generation_rouge_ci_high": "Upper bound of the bootstrap 95% interval of ROUGE (sampled windows).",
    "generation_bleu_ci_low": "Lower bound of the bootstrap 95% interval of BLEU (sampled windows).",
    "generation_bleu_ci_high": "Upper bound of the bootstrap 95% interval of BLEU (sampled windows).",
    "generation_empty_responses": "Requests with a reference but an empty response.",
    "rag_hit_rate_at_k": "Share of queries with a relevant id in the top k.",
    "rag_excluded_queries": "Queries left out of retrieval quality (no relevant ids, unreadable lists).",
    "rag_duplicate_id_queries": "Queries whose retrieved ids repeat (counted once, at the first rank).",
    "quality_sample_size": "Rows that produced a quality figure (labelled by metric).",
    "quality_population_size": "Rows eligible for a quality figure before sampling.",
    "quality_excluded_rows": "Rows left out of a quality family, by reason.",
    "quality_label_coverage": "Share of the window's requests that carry a label.",
    "quality_labels_provisional": "1 while the window is younger than quality.label_delay_days.",
    "quality_reference_value": "The reference (baseline) value of a quality figure.",
    "quality_change_ratio": "Quality figure / its reference value - 1.",
    # A/B
    "ab_metric_mean": "Mean of the experiment metric for the variant.",
    "ab_lift": "Relative lift of the variant over control.",
    "ab_lift_ci_low": "Lower bound of the lift's confidence interval.",
    "ab_lift_ci_high": "Upper bound of the lift's confidence interval.",
    "ab_p_value": "p-value of the variant against control.",
    "ab_srm_p_value": "SRM chi-square p-value of the split since the start (no span) or over the last span=1d|3d|1w.",
    "ab_srm_detected": "1 if the traffic split is off (SRM p < srm_threshold / spans); no span: any span is off.",
    "ab_diff": "Absolute difference of the variant's metric from control.",
    "ab_diff_ci_low": "Lower bound of the absolute difference's confidence interval.",
    "ab_diff_ci_high": "Upper bound of the absolute difference's confidence interval.",
    "ab_p_value_adjusted": "p-value after the experiment's Holm or Benjamini-Hochberg correction.",
    "ab_metric_status": "Decision code of one variant and metric (docs: A/B experiments).",
    "ab_status": "Decision code of the experiment (docs: A/B experiments).",
    "ab_regression_detected": "1 if the variant significantly regresses the metric, else 0.",
    "ab_units": "Requests (units of analysis) of the variant since the experiment started.",
    "ab_sample_size": "Units per variant still needed for the minimum detectable effect at 80% power.",
    "ab_cuped_lift": "CUPED-adjusted relative lift, per unit (unit_id or user_id) with its pre-period value.",
    "ab_cuped_lift_ci_low": "Lower bound of the CUPED lift's interval (always-valid when sequential).",
    "ab_cuped_lift_ci_high": "Upper bound of the CUPED lift's interval (always-valid when sequential).",
    "ab_cuped_p_value": "p-value of the CUPED-adjusted comparison (always-valid mSPRT when sequential).",
    "ab_cuped_variance_reduction": "Share of the lift's variance CUPED removed: 1 - (adjusted / plain SE)^2.",
    "ab_cuped_units": "Units of the variant in the CUPED comparison (with pre-period data).",
    "ab_cuped_excluded_units": "Units left out of CUPED, by reason (no_pre_period, several_variants).",
    # deployments (aimon.tasks.deploy; docs/alerts.md, Planned changes)
    "deploy_check_ratio": "New model / its baseline after a deployment: p95 latency, error rate or accuracy (check).",
    "deploy_check_p_value": "One-sided p-value that the new model is worse than its baseline on the check.",
    "deploy_check_failed": "1 if the check's ratio is past its limit and its test significant; check=__all__: any.",
    "deployment_rollout_active": "1 while the model is within deployments.rollout_windows of its deployment.",
    "deployment_detected": "1 in the window a new model was first seen and recorded as a deployment.",
    # SLOs (aimon.tasks.slo; docs/slos.md)
    "slo_events": "Events the SLO counts in the window (its accepted requests).",
    "slo_good_events": "Good events of the SLO in the window (not failed, or at most the latency threshold).",
    "slo_burn_rate": "Error ratio over the span / the SLO's error budget (1 spends the budget in the period).",
    "slo_error_budget_remaining": "Share of the period's error budget left (negative: overspent).",
    "slo_burn_alert": "1 if both spans of a burn check of the tier (page, ticket) burn faster than its factor.",
    # run meta (aimon.tasks.contract, aimon.tasks.orchestration.run)
    "monitoring_rows": "Rows seen in the window, by status (accepted, rejected) and reason.",
    "monitoring_table_null_timestamp_rows": "Rows of the whole table with a null timestamp.",
    "monitoring_run_success": "1 if the window's last run succeeded, 0 if it failed or ended degraded.",
    "monitoring_run_duration_seconds": "Wall time of the window's last run.",
    "monitoring_last_success_timestamp_seconds": "Unix time of the window's last successful run.",
    "monitoring_window_provisional": "1 while the window's figures are provisional (run before it ended).",
}

# Series that Prometheus and the Pushgateway add themselves; rules may use them too.
PROMETHEUS_OWN = ("up", "push_time_seconds", "push_failure_time_seconds")

# Labels that must never reach Prometheus: each value is a new series (docs/reference/metrics.md,
# STYLE.md habit 8). `job` and `granularity` come from the push's grouping key.
FORBIDDEN_LABELS = frozenset(
    {
        "user_id",
        "request_id",
        "prompt",
        "prompt_hash",
        "response",
        "reference",
        "comment",
        "embedding",
        "response_embedding",
        "reference_embedding",
    }
)
RESERVED_LABELS = frozenset({"job", "granularity", "instance"})

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def help_text(metric: str) -> str:
    return METRICS.get(metric, f"aimon figure {metric} (per window).")


def series_problem(metric: str, labels: dict[str, str] | tuple[tuple[str, str], ...]) -> str | None:
    """Why a figure cannot become a Prometheus series, or None when it can."""
    if not METRIC_NAME.match(metric):
        return f"{metric!r} is not a valid Prometheus metric name"
    for key in dict(labels):
        if not LABEL_NAME.match(key) or key.startswith("__"):
            return f"{metric}: label {key!r} is not a valid Prometheus label name"
        if key in FORBIDDEN_LABELS:
            return f"{metric}: label {key!r} is unbounded and never becomes a Prometheus label"
        if key in RESERVED_LABELS:
            return f"{metric}: label {key!r} is reserved for the push's grouping key"
    group = dict(labels).get("group")
    if group in FORBIDDEN_LABELS:  # llm_group_cost_usd{group="user_id", key=<a user id>}
        return f"{metric}: values of {group!r} (group={group}) are unbounded and never become Prometheus series"
    return None
