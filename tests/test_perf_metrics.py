"""`python -m disentbench.bench.perf metrics` at tiny sizes: it runs and its last line is the JSON summary
(no timed assertions)."""

import json

from disentbench.bench.perf import metrics as perf_metrics


def test_metrics_benchmark_prints_json_summary(capsys):
    assert (
        perf_metrics.main(
            ["--metrics", "mig,dci", "--scale", "0.01", "--n-jobs", "1", "--check-dci", "--host-repeats", "1"]
        )
        == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert set(summary["metrics"]) == {"mig", "dci"}
    assert summary["metrics"]["dci"]["sizes"]["num_train"] == 100
    assert summary["jit_seconds"] >= 0 and summary["total_seconds"] >= 0
    assert "numba" in summary["versions"]
    host = summary["host_reference"]  # the fixed workload that makes two machines' figures comparable
    assert set(host) == {"gbt_seconds", "lr_seconds"} and all(v > 0 for v in host.values())
    assert summary["dci_vs_sklearn"]["identical"] is True  # numba DCI == scikit-learn's, on these codes
