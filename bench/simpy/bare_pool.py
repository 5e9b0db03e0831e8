#!/usr/bin/env python3
"""The peer of conductor-sim's speed benchmark: the bare worker pool alone, in SimPy.

An M/M/c/c loss system: Poisson arrivals at `rate` per second, `c` servers, exponential service
of mean `mean` seconds, no queue (an arrival that finds every server busy is blocked and leaves:
the pool's exhaustion). It is the least a simulation of the pool can do, so conductor-sim, which
runs the whole stack (API, bus, store, conductors, hosts, client) on the same load, is measured
against it in simulated arrivals per wall-second (scripts/bench runs both side by side).

Prints one JSON object: the mode, its parameters, arrivals, blocked, the blocked fraction and
Erlang B for the same c and offered load (they must agree: the model is the one conductor-sim's
pool is checked against), the wall seconds of the simulation loop (and of the whole process up
to the print), and arrivals per wall-second.

Modes (the scenarios conductor-sim runs in scripts/bench):
  bare-capacity  c = 10, 5/s, mean 1 s, 11 h (scenarios/bench/bare-capacity.toml: ≈198,000 arrivals)
  baseline       c = 10, 8/s, mean 1 s, 1 h (scenarios/baseline.toml's load: ≈28,800 arrivals)
Any parameter can be overridden (--servers, --rate, --mean, --hours, --seed).

Exit 2 on bad arguments (argparse's own convention).
"""

import argparse
import json
import math
import random
import sys
import time

START = time.perf_counter()

import simpy  # noqa: E402  (imported after START: the import is part of the process's cost)

MODES = {
    "bare-capacity": {"servers": 10, "rate": 5.0, "mean": 1.0, "hours": 11.0},
    "baseline": {"servers": 10, "rate": 8.0, "mean": 1.0, "hours": 1.0},
}


def erlang_b(servers, offered):
    """Erlang B by the stable recurrence B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1))."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def simulate(servers, rate, mean, horizon, seed):
    """Runs the loss system for `horizon` simulated seconds; returns (arrivals, blocked)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=servers)
    counts = {"arrivals": 0, "blocked": 0}

    def job(service):
        with pool.request() as req:
            yield req
            yield env.timeout(service)

    def arrivals():
        while True:
            yield env.timeout(rng.expovariate(rate))
            counts["arrivals"] += 1
            # Blocked if every server is busy: the request would wait, and a loss system
            # does not queue (conductor-sim's pool with no queue room refuses it too).
            if pool.count >= servers:
                counts["blocked"] += 1
            else:
                env.process(job(rng.expovariate(1.0 / mean)))

    env.process(arrivals())
    env.run(until=horizon)
    return counts["arrivals"], counts["blocked"]


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text!r}")
        return value

    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), default="bare-capacity")
    p.add_argument("--servers", type=positive(int), help="c, the pool's workers")
    p.add_argument("--rate", type=positive(float), help="arrivals per simulated second")
    p.add_argument("--mean", type=positive(float), help="mean service time, seconds")
    p.add_argument("--hours", type=positive(float), help="simulated hours")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    params = dict(MODES[a.mode])
    for key in params:
        if getattr(a, key) is not None:
            params[key] = getattr(a, key)

    t0 = time.perf_counter()
    arrivals, blocked = simulate(
        params["servers"], params["rate"], params["mean"], params["hours"] * 3600.0, a.seed
    )
    wall = time.perf_counter() - t0
    offered = params["rate"] * params["mean"]
    out = {
        "mode": a.mode,
        "simpy": simpy.__version__,
        "python": sys.version.split()[0],
        "seed": a.seed,
        **params,
        "arrivals": arrivals,
        "blocked": blocked,
        "blocked_fraction": blocked / arrivals if arrivals else 0.0,
        "erlang_b": erlang_b(params["servers"], offered),
        "wall_s": wall,
        "arrivals_per_wall_s": arrivals / wall if wall > 0 else 0.0,
        "process_wall_s": time.perf_counter() - START,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
