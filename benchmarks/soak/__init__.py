"""``make soak``: the daemon under steady churn, watched for growth (benchmarks/README.md)."""
