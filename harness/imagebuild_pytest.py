"""The fixture file downstream projects used to copy is now a pytest plugin: `pip install
imagebuild` (see the README) and the fixtures are registered by themselves.

This file stays so that suites which put this folder on sys.path and
`from imagebuild_pytest import imagebuild, imagebuild_client, imagebuild_world` keep working
from a checkout: it loads the plugin's package (python/imagebuild_pytest) under this name.
"""

import importlib.util
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1] / "python" / "imagebuild_pytest"
_spec = importlib.util.spec_from_file_location("imagebuild_pytest", _PACKAGE / "__init__.py",
                                               submodule_search_locations=[str(_PACKAGE)])
_module = importlib.util.module_from_spec(_spec)
sys.modules["imagebuild_pytest"] = _module
_spec.loader.exec_module(_module)
