"""Runs the tutorial's complete example and its Step 5 failure story against three local
provider simulators (backstop-sim on 127.0.0.1, fake keys): no API keys, no network.

    python crates/backstop-py/examples/try_tutorial.py

Builds backstop-sim with cargo first if it is not built yet.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import simulators  # noqa: E402


def main() -> int:
    sims = simulators.start_all(simulators.sim_binary(build=True))
    try:
        env = {**os.environ, **simulators.provider_env(sims)}
        for script in ("complete_example.py", "step5_story.py"):
            print(f"===== {script} (against backstop-sim) =====", flush=True)
            done = subprocess.run([sys.executable, str(HERE / script)], env=env)
            if done.returncode != 0:
                return done.returncode
    finally:
        simulators.stop_all(sims)
    return 0


if __name__ == "__main__":
    sys.exit(main())
