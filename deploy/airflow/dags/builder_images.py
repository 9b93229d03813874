"""The images `builder pin` pinned, for DAGs that look them up by name.

`builder pin` writes images.lock.json beside this file (image name -> repo@sha256:...);
a DAG imports this module from the DAG folder:

    from builder_images import image

    KubernetesPodOperator(task_id="orders", image=image("etl-orders"), ...)

Plain Python and the standard library only: it runs wherever the scheduler parses DAGs.
"""

from __future__ import annotations

import json
from pathlib import Path

LOCK_FILE = Path(__file__).with_name("images.lock.json")


def images(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Every pinned image: name -> reference. Read each time: a pin run may rewrite it."""
    with lock_file.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{lock_file}: expected an object of image name -> reference")
    return {str(name): str(reference) for name, reference in data.items()}


def image(name: str, lock_file: Path = LOCK_FILE) -> str:
    """The pinned reference of one image, e.g. registry/ns/etl-orders@sha256:..."""
    known = images(lock_file)
    if name not in known:
        raise KeyError(
            f"{name!r} is not in {lock_file} (it has: {', '.join(sorted(known)) or 'nothing'}); "
            "run `builder pin` after the build that pushes it"
        )
    return known[name]
