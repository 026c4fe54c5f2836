#!/usr/bin/env python3
"""Two-dimensional vector bin packing instances for `warden plan --shape` (standard library only).

Classes:
  ct1 … ct10   Caprara and Toth (2001), as they are usually generated (after Spieksma 1994 for 1–5):
               ct1  sizes U[100,400],  capacity 1000      ct6  U[20,100],  capacity 150
               ct2  U[1,1000],  1000                      ct7  w U[20,100], v U[w-10,w+10], 150 (correlated)
               ct3  U[200,800], 1000                      ct8  w U[20,100], v U[110-w,130-w], 150 (anti-correlated)
               ct4  U[50,200],  1000                      ct9  U[100,400], capacities set so the volume bound is tight
               ct5  U[25,100],  1000                      ct10 triplets: a, b U[25,50], c = 100-a-b, capacity 100
  fal3         Falkenauer-style triplets in each dimension: a U[380,490], b U[250,(1000-a)/2], c = 1000-a-b
  mom3         wide triplets (Mommessin et al. 2022 style): a, b U[1,50], c = 100-a-b, capacity 100
  pan-u        Panigrahy et al. (2011) style: independent dimensions, U[50,450], capacity 1000
  pan-c        correlated: d1 U[50,450], d2 = d1 * U[0.8,1.2]
  pan-a        anti-correlated: d1 U[50,450], d2 = 500 - d1 + U[-50,50]

Triplet classes (ct10, fal3, mom3) are built three items at a time, each triple filling one bin exactly in
both dimensions, so the optimum is known: n/3 (and it equals the volume bound).

Dimension 1 becomes cpu in millicores, dimension 2 memory in bytes: `{"id": "i7", "cpu": "250m", "memory": "310"}`,
shape `CAP1m,CAP2`.

  gen_vbp.py --class ct1 --n 100 --seed 1 --out DIR      one instance; prints its metadata as one JSON line
  gen_vbp.py --suite quick|default|full --out DIR         a suite; one JSON line per instance
"""
import argparse
import json
import math
import os
import random

CT_UNIFORM = {"ct1": (100, 400, 1000), "ct2": (1, 1000, 1000), "ct3": (200, 800, 1000), "ct4": (50, 200, 1000),
              "ct5": (25, 100, 1000), "ct6": (20, 100, 150)}
CLASSES = [f"ct{i}" for i in range(1, 11)] + ["fal3", "mom3", "pan-u", "pan-c", "pan-a"]
TRIPLETS = {"ct10", "fal3", "mom3"}


def triplet(rng, kind):
    """Three sizes of one dimension adding up to the capacity."""
    if kind == "ct10":
        a, b = rng.randint(25, 50), rng.randint(25, 50)
        return [a, b, 100 - a - b], 100
    if kind == "fal3":
        a = rng.randint(380, 490)
        b = rng.randint(250, (1000 - a) // 2)
        return [a, b, 1000 - a - b], 1000
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    return [a, b, 100 - a - b], 100


def generate(cls, n, seed):
    """Returns (items as [(d1, d2)], capacity (c1, c2), known optimum or None)."""
    rng = random.Random(f"{cls}-{n}-{seed}")
    items = []
    if cls in CT_UNIFORM:
        lo, hi, cap = CT_UNIFORM[cls]
        items = [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(n)]
        return items, (cap, cap), None
    if cls == "ct7":
        for _ in range(n):
            w = rng.randint(20, 100)
            items.append((w, rng.randint(w - 10, w + 10)))
        return items, (150, 150), None
    if cls == "ct8":
        for _ in range(n):
            w = rng.randint(20, 100)
            items.append((w, rng.randint(110 - w, 130 - w)))
        return items, (150, 150), None
    if cls == "ct9":
        items = [(rng.randint(100, 400), rng.randint(100, 400)) for _ in range(n)]
        totals = [sum(x[k] for x in items) for k in range(2)]
        bins = math.ceil(max(totals) / 1000)
        return items, tuple(math.ceil(t / bins) for t in totals), None
    if cls in TRIPLETS:
        n -= n % 3
        cap = None
        for _ in range(n // 3):
            d1, cap = triplet(rng, cls)
            d2, _ = triplet(rng, cls)
            items += list(zip(d1, d2))
        rng.shuffle(items)
        return items, (cap, cap), n // 3
    if cls == "pan-u":
        return [(rng.randint(50, 450), rng.randint(50, 450)) for _ in range(n)], (1000, 1000), None
    if cls == "pan-c":
        for _ in range(n):
            a = rng.randint(50, 450)
            items.append((a, max(1, min(1000, round(a * rng.uniform(0.8, 1.2))))))
        return items, (1000, 1000), None
    if cls == "pan-a":
        for _ in range(n):
            a = rng.randint(50, 450)
            items.append((a, max(1, min(1000, 500 - a + rng.randint(-50, 50)))))
        return items, (1000, 1000), None
    raise SystemExit(f"unknown class {cls!r} (known: {', '.join(CLASSES)})")


def write(cls, n, seed, out):
    items, cap, opt = generate(cls, n, seed)
    name = f"{cls}-n{len(items)}-s{seed}"
    tasks = [{"id": f"i{k}", "cpu": f"{a}m", "memory": str(b)} for k, (a, b) in enumerate(items)]
    path = os.path.join(out, name + ".tasks.json")
    with open(path, "w") as f:
        json.dump(tasks, f)
    nodes_path = None
    if opt is not None:
        # A cluster of exactly the optimal number of nodes: a fixed-cluster plan should place everything.
        nodes_path = os.path.join(out, name + ".nodes.json")
        with open(nodes_path, "w") as f:
            json.dump([{"name": "n", "cpu": f"{cap[0]}m", "memory": str(cap[1]), "count": opt}], f)
    return {"name": name, "class": cls, "n": len(items), "seed": seed, "tasks": path, "nodes": nodes_path,
            "shape": f"{cap[0]}m,{cap[1]}", "optimum": opt}


SUITES = {
    "quick": [(c, n, s) for c in CLASSES for n in (60,) for s in (1,)],
    "default": [(c, n, s) for c in CLASSES for n in (60, 120, 201) for s in (1, 2)],
    "full": [(c, n, s) for c in CLASSES for n in (25, 51, 99, 201) for s in range(1, 11)],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--class", dest="cls", choices=CLASSES)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--suite", choices=sorted(SUITES))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    todo = SUITES[a.suite] if a.suite else [(a.cls or "ct1", a.n, a.seed)]
    for cls, n, seed in todo:
        print(json.dumps(write(cls, n, seed, a.out)))


if __name__ == "__main__":
    main()
