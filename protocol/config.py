"""Where pinpoint keeps things: the project checkout and the operator's home directory.

    PROJECT                  the checkout (node_modules/.bin/anvil, deploy/networks.toml, deploy/deployments/)
    $PINPOINT_HOME           the operator's home (default ~/.pinpoint): keystores/, db/, store/, argus/
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
HOME_ENV = "PINPOINT_HOME"


def home() -> Path:
    """The pinpoint home directory: $PINPOINT_HOME, else ~/.pinpoint (not created here)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".pinpoint").expanduser()
