"""One plugin class per mode of a gate process (:class:`~pytest_parex.state.Mode`):

* :mod:`~pytest_parex.modes.controller` -- the xdist controller;
* :mod:`~pytest_parex.modes.worker` -- an xdist worker;
* :mod:`~pytest_parex.modes.inprocess` -- no workers: the checks run here one after another,
  or (``--parex-plan``) only the plan is printed.

The controller and the in-process run own the verdict: :mod:`~pytest_parex.modes.base`.
"""
