"""Training throughput of DIM against the machine's own matmul rate.

Run from the repository root:

    python benchmarks/throughput.py --quick
    python benchmarks/throughput.py --goals
    python benchmarks/throughput.py --encoders basic32x32 --batch-sizes 64,128

For every row (encoder, objective, estimator, batch size, backend,
jit_compile, precision) it times the compiled training step on a batch
already in memory (no `fit`, no callbacks): warm-up steps, then several
timed steps, each followed by a probe of the machine's dense matmul rate
(a 2048 x 2048 matmul in the row's compute dtype). Steps and probes are
interleaved, so a machine shared with other work slows both alike: each
row reports the median over steps of (achieved GFLOP/s) / (probe GFLOP/s).
FLOPs are counted by hand (`dim_keras.flops`: convolutions, dense layers
and score products, forward + backward) and, on TensorFlow, checked
against TensorFlow's own per-op count of the traced step.

It also times the input pipeline alone and records each row's peak
resident memory (the process's, reset before each row where Linux allows).
It prints a table and writes every number to a JSON file.

Backends other than the running one are benchmarked in a subprocess with
`KERAS_BACKEND` set; a backend that is not installed, or that dim_keras
does not support, is skipped with the reason printed. When both
`jit_compile` settings are asked for, each runs in a process of its own, as
a training run would: on TensorFlow, a model built after XLA-compiled steps
have run in the same process trains 10-15% slower in mixed_bfloat16
without XLA (measured on a 2-core CPU).
"""

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

# Paper settings: DIM(L) alpha=0, beta=1, gamma=0.1; DIM(G) alpha=1,
# beta=0, gamma=1.
OBJECTIVES = {
    "local": dict(alpha=0.0, beta=1.0, gamma=0.1),
    "global": dict(alpha=1.0, beta=0.0, gamma=1.0),
}
IMAGE_SIZE = {"basic32x32": 32, "alex64x64": 64}

# The goal rows: basic32x32, local DIM, encode-and-dot.
GOALS = [
    dict(critic_units=2048, batch_size=64, precision="float32", goal=0.80),
    dict(critic_units=512, batch_size=128, precision="float32", goal=0.70),
    dict(critic_units=2048, batch_size=64, precision="mixed_bfloat16"),
    dict(critic_units=512, batch_size=128, precision="mixed_bfloat16"),
]
# mixed_bfloat16 over float32 images/s asked for on a CPU with bf16 units.
BFLOAT16_SPEEDUP_GOAL = 1.5
# What two rows share when they time the same step (precision aside).
SAME_STEP_KEYS = ("encoder", "objective", "estimator", "critic_units",
                  "batch_size", "jit")


def csv_list(kind=str):
    def parse(text):
        return [kind(v) for v in text.split(",") if v]

    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="DIM training throughput vs the measured matmul peak."
    )
    p.add_argument("--quick", action="store_true",
                   help="small matrix: basic32x32, batch 64, jsd/nce, float32")
    p.add_argument("--goals", action="store_true",
                   help="only the issue's goal rows (basic32x32 local DIM)")
    p.add_argument("--encoders", type=csv_list(),
                   default=["basic32x32", "alex64x64"])
    p.add_argument("--objectives", type=csv_list(),
                   default=["local", "global"])
    p.add_argument("--estimators", type=csv_list(),
                   default=["jsd", "dv", "nce"])
    p.add_argument("--batch-sizes", type=csv_list(int), default=[64, 128, 256])
    p.add_argument("--backends", type=csv_list(),
                   default=["tensorflow", "jax", "torch"])
    p.add_argument("--jit", type=csv_list(), default=["off", "on"],
                   help="jit_compile settings: off,on (one process each)")
    p.add_argument("--precisions", type=csv_list(), default=["float32"],
                   help="float32,mixed_bfloat16")
    p.add_argument("--critic-units", type=int, default=2048,
                   help="encode-and-dot width U (2048 in the reference)")
    p.add_argument("--image-size", type=int, default=None,
                   help="override the encoder's image size (scaling runs)")
    p.add_argument("--inter-op-threads", type=int, default=None,
                   help="TensorFlow inter-op threads (default: its own)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peak-size", type=int, default=2048)
    p.add_argument("--no-pipeline", action="store_true",
                   help="skip the input-pipeline-only rows")
    p.add_argument("--json", default="throughput.json",
                   help="where to write the results")
    p.add_argument("--markdown", default=None, metavar="JSON",
                   help="print a results JSON as a Markdown table and exit")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.encoders = ["basic32x32"]
        args.batch_sizes = [64]
        args.estimators = ["jsd", "nce"]
        args.steps = min(args.steps, 3)
    return args


# ---------------------------------------------------------------- helpers


def rss_reset():
    """Resets the process's peak RSS (Linux); returns whether it could."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_peak_mib():
    """Peak resident memory of this process, MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        info["load_average"] = list(os.getloadavg())
    except OSError:
        pass
    return info


class Backend:
    """The few backend-specific calls the benchmark needs."""

    def __init__(self, name):
        import keras

        self.name = name
        self.keras = keras
        if name == "tensorflow":
            import tensorflow as tf

            self.tf = tf
        elif name == "jax":
            import jax

            self.jax = jax
        elif name == "torch":
            import torch

            self.torch = torch

    def device(self):
        if self.name == "tensorflow":
            gpus = self.tf.config.list_physical_devices("GPU")
            return "gpu" if gpus else "cpu"
        if self.name == "jax":
            return self.jax.devices()[0].platform
        return "cuda" if self.torch.cuda.is_available() else "cpu"

    def to_device(self, array):
        return self.keras.ops.convert_to_tensor(array)

    def sync(self, value):
        value = self.keras.ops.cast(value, "float32")
        return float(self.keras.ops.convert_to_numpy(value))

    def matmul_probe(self, size, dtype):
        """Returns a callable timing `size`^2 matmuls: (wall, CPU) GFLOP/s."""
        import numpy as np

        ops = self.keras.ops
        rng = np.random.default_rng(0)
        a = ops.cast(self.to_device(rng.normal(size=(size, size))), dtype)
        b = ops.cast(self.to_device(rng.normal(size=(size, size))), dtype)
        if self.name == "tensorflow":
            fn = self.tf.function(lambda a, b: self.tf.linalg.matmul(a, b))
        elif self.name == "jax":
            fn = self.jax.jit(lambda a, b: a @ b)
        else:
            fn = lambda a, b: self.torch.matmul(a, b)  # noqa: E731

        reps = [1]

        def once():
            cpu, start = time.process_time(), time.perf_counter()
            for _ in range(reps[0]):
                out = fn(a, b)
            self.sync(ops.cast(out[0, 0], "float32"))
            flops = reps[0] * 2.0 * size**3 / 1e9
            return (
                flops / (time.perf_counter() - start),
                flops / max(time.process_time() - cpu, 1e-9),
            )

        once()
        # On a fast device, queue enough matmuls per sync to time >= 20 ms.
        seconds = 2.0 * size**3 / 1e9 / once()[0]
        reps[0] = max(1, int(0.02 / seconds))
        return once


def measure_peak(probe, seconds=0.25):
    """Best-of rates over a short burst of probes (the rate when free).

    Returns:
        `(GFLOP/s of wall time, GFLOP per second of process CPU time)`.
    """
    rates = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        rates.append(probe())
    return max(r[0] for r in rates), max(r[1] for r in rates)


# ---------------------------------------------------------------- rows


def build(args, backend, encoder_name, objective, estimator, precision,
          critic_units, jit):
    import keras

    from dim_keras.model import DeepInfoMax
    from dim_keras.networks.encoders import build_encoder

    keras.mixed_precision.set_dtype_policy(precision)
    image_size = args.image_size or IMAGE_SIZE[encoder_name]
    encoder = build_encoder(encoder_name, image_size=image_size)
    model = DeepInfoMax(
        encoder,
        estimator=estimator,
        local_critic_units=critic_units,
        seed=0,
        **OBJECTIVES[objective],
    )
    model.compile(jit_compile=jit)
    model.build((None, image_size, image_size, 3))
    model.build_optimizers()
    keras.mixed_precision.set_dtype_policy("float32")
    return model, image_size


def make_step(backend, model, batch, jit):
    """The compiled train step and how to call it on an in-memory batch."""
    if backend.name == "tensorflow":
        tf = backend.tf
        step = tf.function(model.train_step, jit_compile=jit)

        def run():
            return backend.sync(step(batch)["loss"])

        return run, step
    # Other backends: Keras's own compiled train function via
    # train_on_batch (adds a little per-call state handling).

    def run():
        logs = model.train_on_batch(batch, return_dict=True)
        return float(logs["loss"])

    return run, None


def prepare_step(args, backend, cfg, precision):
    """The model of a row's configuration and its step on a fixed batch.

    Args:
        args: parsed arguments (`image_size`).
        backend: the current `Backend`.
        cfg: a row's configuration.
        precision: dtype policy of the model.

    Returns:
        `(model, image_size, batch, run, step)`: `run()` takes one training
        step on `batch` (seeded random images) and returns its loss; `step`
        is the `tf.function` on TensorFlow, else None.
    """
    import numpy as np

    jit = cfg["jit"] == "on"
    model, image_size = build(
        args, backend, cfg["encoder"], cfg["objective"], cfg["estimator"],
        precision, cfg["critic_units"], jit,
    )
    images = np.random.default_rng(0).integers(
        0, 256, (cfg["batch_size"], image_size, image_size, 3), dtype=np.uint8
    )
    batch = backend.to_device(images)
    run, step = make_step(backend, model, batch, jit)
    return model, image_size, batch, run, step


def run_row(args, backend, cfg, probes):
    from dim_keras import flops

    rss_ok = rss_reset()
    model, image_size, batch, run, step = prepare_step(
        args, backend, cfg, cfg["precision"]
    )
    start = time.perf_counter()
    loss = run()
    compile_s = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        loss = run()
    probe = probes["bfloat16" if "bfloat16" in cfg["precision"] else "float32"]
    f32_probe = probes["float32"]
    counted = flops.training_step_flops(model, cfg["batch_size"])
    step_times, cpu_times, peaks = [], [], []
    fractions, f32_fractions, cpu_fractions = [], [], []
    for _ in range(args.steps):
        cpu, start = time.process_time(), time.perf_counter()
        loss = run()
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
        achieved = counted["total"] / seconds / 1e9
        peak, cpu_peak = measure_peak(probe)
        f32_peak = peak if probe is f32_probe else measure_peak(f32_probe)[0]
        step_times.append(seconds)
        cpu_times.append(cpu_seconds)
        peaks.append(peak)
        fractions.append(achieved / peak)
        f32_fractions.append(achieved / f32_peak)
        cpu_fractions.append(counted["total"] / cpu_seconds / 1e9 / cpu_peak)
    median = statistics.median(step_times)
    row = dict(cfg)
    row.update(
        backend=backend.name,
        device=backend.device(),
        image_size=image_size,
        step_ms=1000 * median,
        step_ms_all=[1000 * t for t in step_times],
        images_per_s=cfg["batch_size"] / median,
        compile_s=compile_s,
        gflop_per_step=counted["total"] / 1e9,
        flops_by_part={k: v / 1e9 for k, v in counted.items()},
        achieved_gflops=counted["total"] / median / 1e9,
        peak_gflops=statistics.median(peaks),
        peak_dtype="bfloat16" if probe is not f32_probe else "float32",
        fraction_of_peak=statistics.median(fractions),
        fraction_of_f32_peak=statistics.median(f32_fractions),
        cpu_ms=1000 * statistics.median(cpu_times),
        fraction_of_peak_cpu_time=statistics.median(cpu_fractions),
        final_loss=loss,
        peak_rss_mib=rss_peak_mib(),
        rss_is_per_row=rss_ok,
    )
    if step is not None and args.check_flops:
        from dim_keras.flops import graph_matmul_flops

        graph = graph_matmul_flops(step.get_concrete_function(batch))
        row["tf_graph_gflop"] = graph["total"] / 1e9
    del model
    import gc

    gc.collect()
    return row


BLOCK_UNTIMED, BLOCK_TIMED = 1, 2


def paired_precision_ratio(args, backend, cfg):
    """Mixed-bfloat16 over float32 images/s, their steps timed in turn.

    Both models are built in this process and their steps alternate (the
    first of each pair alternates too), so drift in the machine's speed
    over the run (other load, clock changes) reaches both precisions alike.
    Separate rows are timed tens of seconds apart, and on a shared machine
    their ratio moves by several percent from run to run.

    Args:
        args: parsed arguments (`warmup`, `steps`, `image_size`).
        backend: the current `Backend`.
        cfg: a row's configuration; its `precision` is ignored.

    Returns:
        A dict with the configuration, each precision's median step time,
        the per-pair ratios and their median (`ratio`).
    """
    runs = {}
    for precision in ("float32", "mixed_bfloat16"):
        run = prepare_step(args, backend, cfg, precision)[3]
        for _ in range(args.warmup):
            run()
        runs[precision] = run  # holds its model
    times = {precision: [] for precision in runs}
    for i in range(2 * args.steps):
        order = list(runs) if i % 2 == 0 else list(runs)[::-1]
        for precision in order:
            run = runs[precision]
            for _ in range(BLOCK_UNTIMED):
                run()
            start = time.perf_counter()
            for _ in range(BLOCK_TIMED):
                run()
            times[precision].append(
                (time.perf_counter() - start) / BLOCK_TIMED
            )
    ratios = [
        f32 / bf16
        for f32, bf16 in zip(times["float32"], times["mixed_bfloat16"])
    ]
    paired = {k: cfg[k] for k in SAME_STEP_KEYS}
    paired.update(
        backend=backend.name,
        device=backend.device(),
        float32_step_ms=1000 * statistics.median(times["float32"]),
        bfloat16_step_ms=1000 * statistics.median(times["mixed_bfloat16"]),
        ratios=ratios,
        ratio=statistics.median(ratios),
    )
    del runs
    import gc

    gc.collect()
    return paired


def format_paired(p):
    return (
        f"{p['backend']} mixed_bfloat16 / float32 images/s, {p['encoder']} "
        f"{p['objective']} U={p['critic_units']} N={p['batch_size']} "
        f"jit {p['jit']}, steps timed in turn: {p['ratio']:.2f}x "
        f"({p['float32_step_ms']:.0f} vs {p['bfloat16_step_ms']:.0f} ms; "
        f"pairs {min(p['ratios']):.2f}-{max(p['ratios']):.2f}x; "
        f"goal {BFLOAT16_SPEEDUP_GOAL}x)"
    )


def pipeline_rows(args, backend):
    """Images/s of the tf.data input pipeline alone."""
    if importlib.util.find_spec("tensorflow") is None:
        return [], ["input pipeline: tensorflow is not installed"]
    import numpy as np

    from dim_keras.data.pipeline import training_pipeline

    rows = []
    sizes = sorted({args.image_size or IMAGE_SIZE[e] for e in args.encoders})
    for size in sizes:
        for batch_size in args.batch_sizes:
            images = np.random.default_rng(0).integers(
                0, 256, (max(4096, 8 * batch_size), size, size, 3),
                dtype=np.uint8,
            )
            pipeline = training_pipeline(images, batch_size, seed=0)
            count, start = 0, None
            for i, batch in enumerate(pipeline.repeat()):
                if i == 2:
                    start = time.perf_counter()
                    count = 0
                if i >= 2:
                    count += int(batch.shape[0])
                if start and time.perf_counter() - start > 1.0:
                    break
            rate = count / (time.perf_counter() - start)
            rows.append(dict(image_size=size, batch_size=batch_size,
                             images_per_s=rate))
    return rows, []


def configs(args):
    if args.goals:
        for goal in GOALS:
            for jit in args.jit:
                yield dict(encoder="basic32x32", objective="local",
                           estimator=args.estimators[0], jit=jit,
                           critic_units=goal["critic_units"],
                           batch_size=goal["batch_size"],
                           precision=goal["precision"],
                           goal=goal.get("goal"))
        return
    for encoder in args.encoders:
        for objective in args.objectives:
            for estimator in args.estimators:
                for batch_size in args.batch_sizes:
                    for jit in args.jit:
                        for precision in args.precisions:
                            yield dict(
                                encoder=encoder, objective=objective,
                                estimator=estimator, batch_size=batch_size,
                                jit=jit, precision=precision,
                                critic_units=args.critic_units, goal=None,
                            )


def run_backend(args):
    """Runs every row on the current Keras backend; returns results."""
    import keras

    name = keras.backend.backend()
    result = {"backend": name, "rows": [], "skipped": [], "pipeline": [],
              "paired": []}
    try:
        import dim_keras.model  # noqa: F401
    except ImportError as e:
        result["skipped"].append(f"{name}: dim_keras cannot run here: {e}")
        return result
    if name == "tensorflow" and args.inter_op_threads:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(
            args.inter_op_threads
        )
    backend = Backend(name)
    probes = {"float32": backend.matmul_probe(args.peak_size, "float32")}
    if "mixed_bfloat16" in args.precisions or args.goals:
        probes["bfloat16"] = backend.matmul_probe(args.peak_size, "bfloat16")
    result["peak_gflops"] = {
        k: measure_peak(p, 1.0)[0] for k, p in probes.items()
    }
    if not args.no_pipeline and name == "tensorflow":
        result["pipeline"], skipped = pipeline_rows(args, backend)
        result["skipped"] += skipped
    for cfg in configs(args):
        label = " ".join(f"{k}={v}" for k, v in cfg.items() if v is not None)
        try:
            row = run_row(args, backend, cfg, probes)
        except Exception as e:  # a row that cannot run (memory, op support)
            msg = f"{name} {label}: {type(e).__name__}: {str(e)[:200]}"
            print("skipped " + msg, flush=True)
            result["skipped"].append(msg)
            continue
        print(format_row(row), flush=True)
        result["rows"].append(row)
    if args.goals:
        # The bfloat16 goal is a ratio: also time both precisions in turn.
        for cfg in configs(args):
            if cfg["precision"] != "float32":
                continue
            try:
                paired = paired_precision_ratio(args, backend, cfg)
            except Exception as e:
                msg = (f"{name} paired U={cfg['critic_units']}: "
                       f"{type(e).__name__}: {str(e)[:200]}")
                print("skipped " + msg, flush=True)
                result["skipped"].append(msg)
                continue
            print(format_paired(paired), flush=True)
            result["paired"].append(paired)
    result["peak_gflops_end"] = {
        k: measure_peak(p, 1.0)[0] for k, p in probes.items()
    }
    return result


def run_other_backend(args, name, argv):
    """Runs this script for backend `name` in a subprocess."""
    module = BACKEND_MODULES.get(name)
    if module is None:
        return {"backend": name, "rows": [], "pipeline": [],
                "skipped": [f"{name}: unknown backend"]}
    if importlib.util.find_spec(module) is None:
        return {"backend": name, "rows": [], "pipeline": [],
                "skipped": [f"{name}: {module} is not installed"]}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        env = dict(os.environ, KERAS_BACKEND=name)
        cmd = [sys.executable, os.path.abspath(__file__), *argv,
               "--worker", "--json", out]
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0 or not os.path.exists(out):
            return {"backend": name, "rows": [], "pipeline": [],
                    "skipped": [f"{name}: worker exited {proc.returncode}"]}
        with open(out) as f:
            return json.load(f)


def run_jit_groups(args, name, current, child_argv):
    """Runs a backend's rows, one process per `jit_compile` setting.

    With a single setting the current backend runs in this process.

    Returns:
        One result dict for the backend (rows of every setting).
    """
    if len(args.jit) == 1:
        if name == current:
            return run_backend(args)
        return run_other_backend(args, name, child_argv)
    results = []
    for i, jit in enumerate(args.jit):
        # The last --jit wins; the input pipeline is timed once.
        argv = child_argv + ["--jit", jit] + (["--no-pipeline"] if i else [])
        results.append(run_other_backend(args, name, argv))
    return merge_results(name, results)


def merge_results(name, results):
    """One backend's result from the results of several processes."""
    merged = {"backend": name, "rows": [], "skipped": [], "pipeline": [],
              "paired": []}
    for result in results:
        merged["rows"] += result["rows"]
        merged["paired"] += result.get("paired", [])
        merged["pipeline"] += result.get("pipeline", [])
        merged["skipped"] += [
            s for s in result["skipped"] if s not in merged["skipped"]
        ]
        if "peak_gflops" in result:
            merged.setdefault("peak_gflops", result["peak_gflops"])
            merged["peak_gflops_end"] = result.get("peak_gflops_end", {})
    return merged


HEADER = (
    f"{'backend':<10} {'encoder':<10} {'obj':<6} {'est':<4} {'U':>5} "
    f"{'N':>4} {'jit':<3} {'precision':<14} {'step ms':>8} {'img/s':>8} "
    f"{'GFLOP/s':>8} {'peak':>6} {'frac':>5} {'fcpu':>5} {'RSS MiB':>8}"
)


def format_row(r):
    return (
        f"{r['backend']:<10} {r['encoder']:<10} {r['objective']:<6} "
        f"{r['estimator']:<4} {r['critic_units']:>5} {r['batch_size']:>4} "
        f"{r['jit']:<3} {r['precision']:<14} {r['step_ms']:>8.1f} "
        f"{r['images_per_s']:>8.1f} {r['achieved_gflops']:>8.1f} "
        f"{r['peak_gflops']:>6.0f} {r['fraction_of_peak']:>5.2f} "
        f"{r['fraction_of_peak_cpu_time']:>5.2f} "
        f"{r['peak_rss_mib']:>8.0f}"
    )


def markdown(report):
    """The rows of a results report as a Markdown table."""
    lines = [
        "| backend | encoder | DIM | estimator | U | batch | jit | precision "
        "| step ms | images/s | GFLOP/step | GFLOP/s | matmul peak | "
        "of peak | of peak (CPU time) | peak RSS MiB |",
        "|" + "---|" * 16,
    ]
    for result in report["results"]:
        for r in result["rows"]:
            own = IMAGE_SIZE.get(r["encoder"])
            size = f" {r['image_size']}px" if r["image_size"] != own else ""
            lines.append(
                f"| {r['backend']} ({r['device']}) | {r['encoder']}{size} | "
                f"{r['objective']} | {r['estimator']} | "
                f"{r['critic_units'] if r['objective'] == 'local' else '-'} | "
                f"{r['batch_size']} | {r['jit']} | {r['precision']} | "
                f"{r['step_ms']:.0f} | {r['images_per_s']:.1f} | "
                f"{r['gflop_per_step']:.1f} | {r['achieved_gflops']:.0f} | "
                f"{r['peak_gflops']:.0f} ({r['peak_dtype']}) | "
                f"{r['fraction_of_peak']:.2f} | "
                f"{r['fraction_of_peak_cpu_time']:.2f} | "
                f"{r['peak_rss_mib']:.0f} |"
            )
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    args.check_flops = True
    if args.worker:
        result = run_backend(args)
        with open(args.json, "w") as f:
            json.dump(result, f)
        return 0
    import keras

    current = keras.backend.backend()
    child_argv = [a for a in argv if not a.startswith("--json")]
    if "--json" in argv:  # drop the value after a bare --json
        i = argv.index("--json")
        child_argv = argv[:i] + argv[i + 2:]
    report = {"machine": machine_info(), "started": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args),
        "results": []}
    print(f"machine: {report['machine']}")
    print(HEADER, flush=True)
    for name in args.backends:
        report["results"].append(
            run_jit_groups(args, name, current, child_argv)
        )
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print()
    print(summary(report))
    tmp = args.json + ".partial"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, args.json)
    print(f"wrote {args.json}")
    return 0


def summary(report):
    lines = []
    for result in report["results"]:
        name = result["backend"]
        if "peak_gflops" in result:
            lines.append(
                f"{name}: matmul peak GFLOP/s at start "
                + ", ".join(
                    f"{k} {v:.0f}" for k, v in result["peak_gflops"].items()
                )
                + "; at end "
                + ", ".join(
                    f"{k} {v:.0f}"
                    for k, v in result.get("peak_gflops_end", {}).items()
                )
            )
        for p in result.get("pipeline", []):
            lines.append(
                f"{name}: input pipeline only, {p['image_size']}px batch "
                f"{p['batch_size']}: {p['images_per_s']:.0f} images/s"
            )
        for row in result["rows"]:
            if row.get("tf_graph_gflop"):
                lines.append(
                    f"{name} {row['encoder']} {row['objective']} U="
                    f"{row['critic_units']} N={row['batch_size']}: hand count "
                    f"{row['gflop_per_step']:.2f} GFLOP/step, TF graph count "
                    f"{row['tf_graph_gflop']:.2f}"
                )
            if row.get("goal"):
                ok = row["fraction_of_peak"] >= row["goal"]
                lines.append(
                    f"{name} goal U={row['critic_units']} "
                    f"N={row['batch_size']} "
                    f"{row['precision']} jit {row['jit']}: "
                    f"{row['fraction_of_peak']:.2f} of peak (goal "
                    f"{row['goal']:.2f}) -> {'met' if ok else 'NOT met'}; "
                    f"by CPU time {row['fraction_of_peak_cpu_time']:.2f}"
                )
        for s in result["skipped"]:
            lines.append(f"skipped {s}")
    # bf16 vs f32 speed-up for matching rows.
    rows = [r for res in report["results"] for r in res["rows"]]
    for r in rows:
        if r["precision"] != "mixed_bfloat16":
            continue
        for f in rows:
            same = all(
                f[k] == r[k] for k in ("backend",) + SAME_STEP_KEYS
            )
            if same and f["precision"] == "float32":
                lines.append(
                    f"{r['backend']} mixed_bfloat16 / float32 images/s, "
                    f"{r['encoder']} "
                    f"{r['objective']} U={r['critic_units']} "
                    f"N={r['batch_size']} jit {r['jit']}: "
                    f"{r['images_per_s'] / f['images_per_s']:.2f}x "
                    f"(goal {BFLOAT16_SPEEDUP_GOAL}x)"
                )
    for result in report["results"]:
        lines += [format_paired(p) for p in result.get("paired", [])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
