"""One plugin class per mode of a gate process (:class:`~pytest_parex.state.Mode`):

* :mod:`~pytest_parex.modes.local` -- the default: local agents, the checks run side by side
  under threads of this process (one after another with ``-n 0``);
* :mod:`~pytest_parex.modes.controller` -- the xdist controller (``-n N``, ``--tx``);
* :mod:`~pytest_parex.modes.worker` -- an xdist worker;
* :mod:`~pytest_parex.modes.plan` -- ``--parex-plan``: only the plan is printed.

The local run and the controller own the verdict: :mod:`~pytest_parex.modes.base`.
"""
