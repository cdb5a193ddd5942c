"""Crash-test fixtures: the integration fixtures (make_petrel, petrel, raw)
and classes (Petrel, Raw), reused as they are.

pytest imports every conftest.py without a package as the module
"conftest", one replacing the other in sys.modules. So the integration
conftest is loaded here under its own name, petrel_integration_conftest
(the crash tests import from that name, never from "conftest"), and all
of its public names are re-exported: an integration test that runs in
the same session and does `from conftest import Raw` still finds them."""
import importlib.util
import sys
from pathlib import Path

_INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(_INTEGRATION) not in sys.path:
    sys.path.append(str(_INTEGRATION))  # helpers.py; appended, not first

_NAME = "petrel_integration_conftest"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _NAME, _INTEGRATION / "conftest.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _mod
    _spec.loader.exec_module(_mod)

globals().update({k: v for k, v in vars(sys.modules[_NAME]).items()
                  if not k.startswith("_")})
