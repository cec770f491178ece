"""Where a dispatcher's time goes, per message: cProfile over one drain of due messages to aiosmtpd.

.venv/bin/python bench/profile_dispatch.py [--messages 1000] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
    [--sort cumulative|tottime] [--lines 40]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (admin URL)")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--lines", type=int, default=40)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from notifier.dispatcher import Dispatcher
    from notifier.serve import settle_heap
    from notifier.transports.smtp import SMTPTransport

    folder = common.scratch()
    sink = common.Sink()
    try:
        with common.database(options.database_url, folder, "profile") as url:
            app = common.make_app(url, folder / "instance")
            svc = app.extensions["notifier"]
            seed = common.prepare(app)
            common.fill(svc.engine, seed, options.messages, due=True, now=svc.clock.now())
            svc.renderer.warm()  # as `notifier worker` does when it starts,
            settle_heap()  # and then it keeps its start-up heap out of the collector's way
            dispatcher = Dispatcher(
                svc.sessions,
                SMTPTransport.from_url(sink.url(), 30),
                svc.renderer,
                svc.clock,
                worker="profile",
                links=svc.links,
            )
            dispatcher.start_sending()  # as `notifier worker` does when it starts
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            outcome = dispatcher.run_once()
            profile.disable()
            took = time.perf_counter() - started
            dispatcher.close()
            svc.engine.dispose()
    finally:
        sink.stop()
        common.remove(folder)
    print(f"{outcome.sent} sent in {took:.2f} s under the profiler: {outcome.sent / took:.0f}/s")
    stats = pstats.Stats(profile)
    stats.sort_stats(options.sort).print_stats(options.lines)
    if os.environ.get("PROFILE_CALLERS"):
        stats.print_callers(os.environ["PROFILE_CALLERS"])


if __name__ == "__main__":
    main()
