"""What a run measured: outcomes, latency histograms, results, summaries."""
