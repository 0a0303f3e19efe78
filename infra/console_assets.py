"""The console's charting library: the pinned npm package's browser build, next to the page.

The console has no front-end build. Its one library, Chart.js, is pinned in
``functions/console/package.json`` and its lock file; ``make`` runs ``python -m infra.console_assets``,
which installs it with ``npm ci`` (again only when the lock file changed) and copies its browser build and
licence into ``functions/console/static``, where the console function serves them and CDK packages them.
Only the standard library here: ``make`` runs it before anything else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "functions" / "console"
STATIC = PACKAGE / "static"
LOCK = PACKAGE / "package-lock.json"
#: (in the installed package, served as): the browser build and its licence
FILES = (
    ("node_modules/chart.js/dist/chart.umd.min.js", "chart.umd.min.js"),
    ("node_modules/chart.js/LICENSE.md", "chart.js.LICENSE.md"),
)
#: what the copied files were installed from: the lock file's hash
STAMP = PACKAGE / "node_modules" / ".installed-from-lock"


def installed() -> bool:
    """The copied files are there, from the lock file as it is now."""
    lock = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    return (
        STAMP.exists()
        and STAMP.read_text() == lock
        and all((STATIC / served).is_file() for _, served in FILES)
    )


def ensure() -> None:
    """Install the pinned library and copy its browser build, unless that is done already."""
    if installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("the console's charting library is installed with npm: install Node.js 18+ (with npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=PACKAGE,
        check=True,
        timeout=600,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    for source, served in FILES:
        shutil.copyfile(PACKAGE / source, STATIC / served)
    STAMP.write_text(hashlib.sha256(LOCK.read_bytes()).hexdigest())


if __name__ == "__main__":
    ensure()
