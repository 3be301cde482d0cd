"""Alert rules -> alert state -> grouped notifications in the outbox -> channels.

The model is Prometheus Alertmanager's (pending -> firing -> resolved, grouping per
route, silences, repeat interval, at-least-once delivery), computed per window:

1. `rules.evaluate_rule` judges each series a rule matches in the window's figures:
   the condition (a threshold, a baseline from the metrics table's history, or both)
   and how many consecutive windows it has held (`for`), read from the same history,
   so a rerun or an out-of-order backfill judges a window the same way every time.
2. `state.transition` turns a judgement and the stored state into the new state and,
   where the route must hear about it, a notification item (fired, resolved, repeat);
   `state.silenced_by` finds the silence that mutes it.
3. `pipeline.alert_window` commits states, the window's alert events and the grouped
   outbox entries (`outbox`, one per route and channel) in one transaction, then
   `delivery.deliver` sends what is due through `channels`, with text from `render`.
   A rerun of a window finds its notifications already told and sends nothing.
4. `task` holds the Prefect task and the flow's helpers (`alert_task`, `with_alerts`,
   `alert_failed_run`); only it imports Prefect.

The alert state tables are aimon.store.alerts (AlertStore). This package's
__init__ re-exports nothing: import from the submodule, so that the CLI's use of
`render` or `state` does not pull in Prefect.
"""
