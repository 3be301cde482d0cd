"""A/B experiments, analysed cumulatively from their start and safe to look at daily.

- reads.py: which metrics can be read and as what SQL; one window's sufficient
  statistics per variant and metric, with the assignments, from the warehouse;
- looks.py: the analysis of the stored per-window statistics (sequential or
  fixed-horizon tests, multiple-testing correction, sample size, sample ratio
  mismatch, decision status); no I/O;
- results.py: the result types and status codes;
- records.py: metric records, notes and details of a result;
- analyzer.py: analyze_abtest, one run over the configured experiments (read, store,
  catch up, analyse, report).

The pure statistics are in aimon/stats/abtests.py, the A/B statistics table in
aimon/store/abstats.py.
"""

from aimon.tasks.abtest.analyzer import analyze_abtest

__all__ = ["analyze_abtest"]
