"""Analysis of results: ranks, correlations, flips, findings, the report card."""
