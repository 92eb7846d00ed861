"""Stop the quickstart training many times in a row and check every stop kept its progress.

Each run resumes the previous one (``--resume``), waits for a random moment (a random step, just after an
epoch's last step, or just after the epoch's ``saved last.ckpt`` line), then sends SIGTERM to the whole process
group (the dataset workers too), SIGTERM to the main process, or SIGINT to the main process, in turn. A run
passes when it exits within ``--timeout`` seconds with 143 (SIGTERM) or 130 (SIGINT), its ``last.ckpt`` holds
the step it reported stopping at (never behind the last step it logged), and the next run resumes there.

    python scripts/stress_stop.py --runs 20 --out /tmp/stress      # quickstart config, 2 worker processes

The loader runs ``--workers`` worker processes (2), not the quickstart's one thread: processes are what a
stop has to bring down with the training (a group SIGTERM reaches them too).

Prints one line per run and a summary; exit code 0 when every run passed, 1 otherwise.
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STEP = re.compile(r"^epoch: \[\s*(\d+)/\d+\], step:\[\s*(\d+)/\s*(\d+)\]")
STOPPED = re.compile(r"stopped by (SIG\w+): saved \S+ \(epoch (\d+), step (\d+)/(\d+)\)")
RESUMED = re.compile(r"resumed at epoch (\d+), step (\d+)/(\d+)")
KINDS = (("group", signal.SIGTERM), ("main", signal.SIGTERM), ("main", signal.SIGINT))
MOMENTS = ("random step", "epoch's last step", "after saved last.ckpt")


def start(args, run_dir):
    env = dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, os.path.join(ROOT, "train.py")]
    if os.path.isfile(os.path.join(run_dir, "last.ckpt")):
        cmd += ["--resume", run_dir]
    else:
        cmd += ["--config", args.config, "--output_dir", os.path.dirname(run_dir),
                "--run_name", os.path.basename(run_dir)]
    cmd += ["--print_loss_every", "1", "--progress", "false", "--num_parallel_workers", str(args.workers)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def trigger(moment, rng):
    """A predicate over output lines that is true at the chosen moment."""
    if moment == "random step":
        target = rng.randint(1, 40)
        return lambda line, m: m is not None and int(m.group(2)) % 45 == target % 45
    if moment == "epoch's last step":
        return lambda line, m: m is not None and m.group(2) == m.group(3)
    return lambda line, m: "; saved last.ckpt" in line


def run_once(args, run_dir, index, rng):
    kind, sig = KINDS[index % len(KINDS)]
    moment = MOMENTS[(index // len(KINDS)) % len(MOMENTS)] if args.moment == "mixed" else args.moment
    proc = start(args, run_dir)
    lines, last_step, resumed = [], None, None
    hit = trigger(moment, rng)
    sent_at = None
    for line in proc.stdout:
        lines.append(line)
        m = STEP.match(line)
        if m:
            last_step = (int(m.group(1)), int(m.group(2)))
        r = RESUMED.search(line)
        if r:
            resumed = (int(r.group(1)) - 1, int(r.group(2)))
        if hit(line, m):
            if moment == "random step" and args.jitter:
                time.sleep(rng.uniform(0, args.jitter))
            sent_at = time.monotonic()
            (os.killpg if kind == "group" else os.kill)(proc.pid, sig)
            break
    if sent_at is None:
        proc.wait()
        return {"error": "training ended before the stop", "out": "".join(lines)}
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    seconds = time.monotonic() - sent_at
    reader.join(timeout=5)
    return check(run_dir, kind, sig, moment, code, seconds, last_step, resumed, "".join(lines), proc.pid)


def lingering(pgid, wait=10.0):
    """Seconds until no process of the group is left (the dataset workers leave after the main process)."""
    start_time = time.monotonic()
    while time.monotonic() - start_time < wait:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return time.monotonic() - start_time
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return float("inf")


def check(run_dir, kind, sig, moment, code, seconds, last_step, resumed, out, pgid):
    from mszoo.engine.checkpoint import load_training_checkpoint

    expected = 130 if sig == signal.SIGINT else 143
    stopped = STOPPED.search(out)
    state = load_training_checkpoint(os.path.join(run_dir, "last.ckpt")).train_state
    saved = (state["epochs_done"], state["epoch_step"])
    said = (int(stopped.group(2)) - 1, int(stopped.group(3))) if stopped else None
    logged = None if last_step is None else ((last_step[0], 0) if last_step[1] == state["steps_per_epoch"]
                                             else (last_step[0] - 1, last_step[1]))
    problems = []
    if code != expected:
        problems.append(f"exit {code}, expected {expected}")
    if seconds > 30:
        problems.append(f"{seconds:.1f} s to exit")
    finished = "training done" in out  # the stop came after the last epoch's save: nothing was left to save
    if said != saved and not finished:
        problems.append(f"reported {said}, last.ckpt holds {saved}")
    steps = state["steps_per_epoch"]
    position = (saved[0] + 1, 0) if saved[1] == steps else saved  # all steps done, validation still to run
    if logged is not None and position < logged:
        problems.append(f"last.ckpt {saved} is behind the last logged step {logged}")
    if "Traceback" in out:
        problems.append("traceback")
    return {"kind": f"{kind} {signal.Signals(sig).name}", "moment": moment, "code": code, "seconds": seconds,
            "saved": saved, "logged": logged, "resumed": resumed, "problems": problems, "out": out,
            "linger": lingering(pgid)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", required=True, help="folder for the run directories")
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "quickstart.yaml"))
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes (1: one thread)")
    parser.add_argument("--timeout", type=float, default=60.0, help="kill a run this long after the stop")
    parser.add_argument("--moment", default="mixed", choices=("mixed",) + MOMENTS)
    parser.add_argument("--jitter", type=float, default=1.0, help="random extra delay (s) at a random step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    series, failures, previous = 0, 0, None
    run_dir = os.path.join(os.path.abspath(args.out), "series0")

    def next_series():
        nonlocal series
        series += 1
        return os.path.join(os.path.abspath(args.out), f"series{series}"), None

    for index in range(args.runs):
        result = run_once(args, run_dir, index, rng)
        if "error" in result and "training done" in result["out"]:  # all epochs done: start a new series
            run_dir, previous = next_series()
            result = run_once(args, run_dir, index, rng)
        if "error" in result:
            print(f"run {index + 1:2d}: {result['error']}\n{result['out'][-3000:]}", flush=True)
            return 1
        if previous is not None and result["resumed"] != previous:
            result["problems"].append(f"resumed at {result['resumed']}, last stop saved {previous}")
        previous = result["saved"]
        failures += bool(result["problems"])
        print(f"run {index + 1:2d}: {result['kind']:13s} at {result['moment']:22s} exit {result['code']} in "
              f"{result['seconds']:5.1f} s (group empty {result['linger']:.1f} s later); last.ckpt epochs_done/step "
              f"{result['saved']}, last logged {result['logged']}, resumed at {result['resumed']} "
              f"{'OK' if not result['problems'] else 'FAIL: ' + '; '.join(result['problems'])}", flush=True)
        if result["problems"]:
            print(result["out"][-3000:], flush=True)
        if "training done" in result["out"]:  # the series ended with this run: the next one starts a new series
            run_dir, previous = next_series()
    print(f"{args.runs - failures}/{args.runs} runs passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
