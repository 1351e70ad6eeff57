"""Run the benchmark suites and write one Markdown report (bench/results/latest.md).

    python -m bench            quick suites (minutes)
    python -m bench --full     everything
    python -m bench --only nlp
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
from pathlib import Path

import torch

SUITES = {  # module -> title
    "nlp": "Classic ALM vs scipy on smooth NLPs",
    "step_time": "Constrained training: ALM step time vs AdamW",
    "sdp": "Max-Cut SDP: BALA, classic ALM (Burer–Monteiro), mixing method, SCS",
    "sdpa": "SDPLIB: BALA, classic ALM (Burer–Monteiro), SCS, Clarabel, CSDP",
    "startup": "Start-up of the alm-bench command",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the long version of every suite")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITES), help="run only these suites")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.md")
    args = parser.parse_args()

    header = (f"# alm-bench benchmarks\n\n{datetime.date.today()} · {platform.processor() or platform.machine()} · "
              f"{os.cpu_count()} CPU cores · torch {torch.__version__} · "
              f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'} · "
              f"command: `python -m bench{' --full' if args.full else ''}`\n")
    sections = [header]
    for name in args.only or SUITES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as err:
            print(f"bench: skipping {name}: {err}", file=sys.stderr)
            continue
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        table = module.run(full=args.full)
        sections.append(f"## {SUITES[name]}\n\n{(module.__doc__ or '').strip()}\n\n{table}\n")
        print(sections[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(sections))
    print(f"bench: report written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
