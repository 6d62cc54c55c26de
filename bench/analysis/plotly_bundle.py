"""plotly.js for the report, one file beside the pages rather than megabytes inlined in each: the bundle
that the installed ``plotly`` package ships, named by its version (``assets/plotly-<version>.min.js``).
A page written into a folder below one that holds the bundle (a committed comparison under results/, with
results/assets/) points at that file by a relative path; anywhere else the bundle is written once into
``assets/`` beside the page."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from plotly.offline import get_plotlyjs_version

ASSETS = "assets"


def bundle_name() -> str:
    """``plotly-<version>.min.js``: the version of plotly.js that the installed plotly ships."""
    return f"plotly-{get_plotlyjs_version()}.min.js"


def shipped() -> Path:
    """The installed plotly package's copy of plotly.min.js."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def place(page: Path) -> str:
    """The bundle's path relative to ``page``'s folder: the nearest ``assets/<bundle>`` in that folder or
    above it, else one written now into ``assets/`` beside the page."""
    folder = page.resolve().parent
    name = bundle_name()
    for above in (folder, *folder.parents):
        if (above / ASSETS / name).is_file():
            return Path(os.path.relpath(above / ASSETS / name, folder)).as_posix()
    (folder / ASSETS).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped(), folder / ASSETS / name)
    return f"{ASSETS}/{name}"
