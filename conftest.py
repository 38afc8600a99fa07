"""Collection rules for the doctest run over the package: an integration module whose framework
is not installed (an optional extra) is not imported, so the suite runs on any install."""

import importlib.util

collect_ignore = [
    path
    for module, path in (
        ("gem", "mempo_gym/integrations/gem.py"),
        ("verifiers", "mempo_gym/integrations/verifiers.py"),
        ("trl", "mempo_gym/integrations/trl.py"),
    )
    if importlib.util.find_spec(module) is None
]
