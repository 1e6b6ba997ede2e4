"""`python -m app.simulator [--host H] [--port P] [--api-key K] [--provision-delay S]
[--start-delay S] [--work-dir DIR]`: serve a simulator until interrupted."""

from __future__ import annotations

import argparse

from app.simulator.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--provision-delay", type=float, default=0.5)
    parser.add_argument("--start-delay", type=float, default=0.5)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        args.api_key,
        provision_delay=args.provision_delay,
        start_delay=args.start_delay,
        work_dir=args.work_dir,
    )


if __name__ == "__main__":
    main()
