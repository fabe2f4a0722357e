"""e911d: keeps hybrid workers' E911 locations honest.

The repository keeps its folders at the top level (``daemon/``, ``consumers/``,
``schedulers/``, ``config/``); this package maps them into the one import name the
distribution claims, so an installed e911d never shadows ``python-daemon`` or
``config`` with top-level packages of its own. The subpackages here are symbolic
links to those folders; a built wheel holds real copies.
"""

__version__ = "0.1.0"
