"""Build hook: compile the Wi-Fi element walker (scanner/sources/wifi/_ewalk.c) when it can.

The extension is optional. Without a C compiler or Python's headers the build goes on and the
parser uses its pure-Python walk (same results, slower); the reason is printed. On Debian and
Raspberry Pi OS the compiler and headers are the ``gcc`` and ``python3-dev`` packages.

The module is compiled in place next to its source, so an editable install imports it from the
source tree; a wheel gets it as an included file. Run ``python hatch_build.py`` to rebuild it in
place after editing the C source.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).parent / "scanner" / "sources" / "wifi" / "_ewalk.c"


def compile_in_place() -> Path | None:
    """Compile the walker next to its source; its path, or None (and why, on stderr)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = SOURCE.with_name("_ewalk" + suffix)
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").is_file():
        sys.stderr.write(f"_ewalk: no Python.h in {include}; using the pure-Python walk\n")
        return None
    cc = shlex.split(os.environ.get("CC") or "cc")
    cmd = [*cc, "-O2", "-fPIC", "-shared", "-Wall", f"-I{include}", str(SOURCE), "-o", str(target)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        sys.stderr.write(f"_ewalk: compiling failed, using the pure-Python walk:\n{detail}\n")
        return None
    return target


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script outside a build
    BuildHookInterface = object  # type: ignore[assignment,misc]


class CompileWalker(BuildHookInterface):  # type: ignore[misc]
    """Hatchling's custom build hook (``[tool.hatch.build.targets.wheel.hooks.custom]``)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        target = compile_in_place()
        if target is None:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(target)] = f"scanner/sources/wifi/{target.name}"


if __name__ == "__main__":
    built = compile_in_place()
    sys.exit(0 if built else 1)
