"""Remember where the most recent run wrote, so commands can default to it.

Input: the output location of a starting run (`record_last_output_dir`), or
nothing (`last_output_dir`). Output: the recorded location (a path, or a
`RemotePath` for an fsspec URL), or None. Side effects:
`record_last_output_dir` atomically rewrites one small JSON file, `last-run.json`,
in the user's state folder (`AGENTSKILLER_STATE_DIR`, else
`$XDG_STATE_HOME/agentskiller`, else `~/.local/state/agentskiller`). The last run
to start wins; a folder that cannot be written costs only this convenience.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tasks.settings import Settings, user_state_dir
from tasks.store.atomic import write_json_atomic
from tasks.store.location import StorePath, store_path
from tasks.store.paths import LAST_RUN_FILE

_log = logging.getLogger(__name__)


def record_last_output_dir(
    output_dir: StorePath, state_dir: Path | None = None
) -> None:
    """Record `output_dir` as the output of the most recent run.

    A state folder that cannot be written is logged as a warning, never raised: the
    run itself does not depend on it.

    Args:
        output_dir: The run's absolute output directory or URL.
        state_dir: Folder of the state file; None means the user's state folder.
    """
    path = _state_file(state_dir)
    try:
        write_json_atomic(path, {"output_dir": str(output_dir)})
    except OSError as exc:
        _log.warning(
            "could not record this run's output directory in %s (%s); "
            "`agentskiller status` will need --output-dir",
            path,
            exc,
        )


def last_output_dir(state_dir: Path | None = None) -> StorePath | None:
    """The output directory the most recent run recorded, if any.

    Args:
        state_dir: Folder of the state file; None means the user's state folder.

    Returns:
        The recorded directory (it may since have been deleted), or None when no
        run was recorded or the file is unreadable.
    """
    try:
        data = json.loads(_state_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("output_dir") if isinstance(data, dict) else None
    return store_path(value) if isinstance(value, str) and value else None


def _state_file(state_dir: Path | None) -> Path:
    folder = state_dir if state_dir is not None else user_state_dir(Settings())
    return folder / LAST_RUN_FILE
