"""The throughput benchmark's plumbing, on tiny shapes."""

import json

import keras
import pytest

from benchmarks import throughput


def test_quick_flag_selects_a_small_matrix():
    args = throughput.parse_args(["--quick"])
    assert args.encoders == ["basic32x32"]
    assert args.batch_sizes == [64]
    assert args.jit == ["off", "on"]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="runs on TensorFlow"
)
def test_tiny_run_writes_rows_and_skips_unknown_backends(tmp_path):
    out = tmp_path / "result.json"
    throughput.main([
        "--encoders", "basic32x32", "--objectives", "local",
        "--estimators", "nce", "--batch-sizes", "4", "--critic-units", "8",
        "--jit", "off", "--backends", "tensorflow,nosuchbackend",
        "--steps", "2", "--warmup", "1", "--peak-size", "64",
        "--no-pipeline", "--json", str(out),
    ])
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    tf_result, other = report["results"]
    (row,) = tf_result["rows"]
    assert row["batch_size"] == 4 and row["critic_units"] == 8
    assert row["images_per_s"] == pytest.approx(
        4 / (row["step_ms"] / 1000)
    )
    assert row["fraction_of_peak"] > 0
    assert row["peak_rss_mib"] > 0
    # The traced graph agrees with the hand count within the prior's
    # second-order terms and the pruned first-conv input gradient.
    assert row["tf_graph_gflop"] == pytest.approx(
        row["gflop_per_step"], rel=0.1
    )
    assert other["rows"] == []
    assert "unknown backend" in other["skipped"][0]


def test_each_jit_setting_runs_in_its_own_process(monkeypatch):
    calls = []

    def fake_worker(args, name, argv):
        jit = argv[argv.index("--jit") + 1]
        calls.append((name, jit, "--no-pipeline" in argv))
        return {
            "backend": name,
            "rows": [{"jit": jit}],
            "pipeline": [] if "--no-pipeline" in argv else [{"p": 1}],
            "skipped": ["jax: note"],
            "peak_gflops": {"float32": 10.0 if jit == "off" else 20.0},
            "peak_gflops_end": {"float32": 11.0 if jit == "off" else 21.0},
            "paired": [{"jit": jit, "ratio": 1.5}],
        }

    monkeypatch.setattr(throughput, "run_other_backend", fake_worker)
    args = throughput.parse_args(["--goals"])
    merged = throughput.run_jit_groups(args, "tensorflow", "tensorflow", [])
    assert calls == [
        ("tensorflow", "off", False),
        ("tensorflow", "on", True),
    ]
    assert [r["jit"] for r in merged["rows"]] == ["off", "on"]
    assert merged["pipeline"] == [{"p": 1}]
    assert merged["skipped"] == ["jax: note"]
    assert merged["peak_gflops"] == {"float32": 10.0}
    assert merged["peak_gflops_end"] == {"float32": 21.0}
    assert [p["jit"] for p in merged["paired"]] == ["off", "on"]


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_paired_ratio_alternates_precisions_and_takes_median(monkeypatch):
    clock = _FakeClock()
    calls = []
    f32, bf16 = "float32", "mixed_bfloat16"

    def fake_build(args, backend, encoder, objective, estimator, precision,
                   critic_units, jit):
        return precision, 4

    def fake_make_step(backend, model, batch, jit):
        def run():
            calls.append(model)
            # float32 steps take 3 s, bfloat16 2 s; the last pair's
            # float32 block is an outlier at 30 s a step.
            steps = calls.count(model) - args.warmup
            outlier = model == f32 and steps > 15
            clock.now += 30.0 if outlier else {f32: 3.0, bf16: 2.0}[model]
            return 0.0

        return run, None

    class FakeBackend:
        name = "tensorflow"

        def to_device(self, x):
            return x

        def device(self):
            return "cpu"

    monkeypatch.setattr(throughput, "build", fake_build)
    monkeypatch.setattr(throughput, "make_step", fake_make_step)
    monkeypatch.setattr(throughput.time, "perf_counter", clock.perf_counter)
    args = throughput.parse_args(["--steps", "3", "--warmup", "1"])
    cfg = dict(encoder="basic32x32", objective="local", estimator="jsd",
               critic_units=8, batch_size=4, jit="off",
               precision="float32", goal=0.7)
    paired = throughput.paired_precision_ratio(args, FakeBackend(), cfg)
    # Warm-up (each once), then six pairs of blocks, the first precision
    # of each pair alternating; a block is one untimed and two timed steps.
    block = throughput.BLOCK_UNTIMED + throughput.BLOCK_TIMED
    pair = [f32] * block + [bf16] * block
    assert calls == [f32, bf16] + (pair + pair[::-1]) * 3
    assert paired["ratios"] == [1.5] * 5 + [15.0]
    assert paired["ratio"] == 1.5  # the median ignores the outlier
    assert paired["float32_step_ms"] == 3000.0
    assert paired["bfloat16_step_ms"] == 2000.0
    assert paired["critic_units"] == 8 and "precision" not in paired
    assert "1.50x" in throughput.format_paired(paired)
